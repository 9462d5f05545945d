"""`fer-edge info`: what is installed and what would run, for bug reports and setup checks."""
from __future__ import annotations

import argparse
import platform
import sys
from typing import Any, Optional

from .options import add_device_option, add_json_option
from .. import jsonout

HELP = "show versions, onnxruntime providers, the native extension and the default model"

# Distributions that install the same import name and break each other when both are present.
CONFLICTS = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                    "onnxruntime-silicon", "onnxruntime-qnn"),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
}


def register(subparsers: Any) -> None:
    from .exitcodes import Exit, help_line

    p = subparsers.add_parser("info", aliases=["doctor"], help=HELP,
                              description=HELP + ". " + help_line(Exit.OK, Exit.FAILURE, Exit.USAGE, Exit.DEVICE))
    add_json_option(p)
    add_device_option(p, "device to check: auto, cpu, cuda, cuda:N, tensorrt (default: auto); exit 5 when it is unavailable")
    p.set_defaults(func=run)


def _dist_version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def collect(device: str = "auto") -> dict[str, Any]:
    """Everything `info` reports, as a dict (no exceptions: problems become fields)."""
    from .. import __version__

    info: dict[str, Any] = {
        "fer_edge": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {},
        "distributions": {},
        "warnings": [],
    }
    import numpy

    info["versions"]["numpy"] = numpy.__version__
    # torch is reported, never imported: the runtime must not pay for (or depend on) it.
    info["versions"]["torch"] = _dist_version("torch")
    try:
        import onnxruntime as ort

        info["versions"]["onnxruntime"] = ort.__version__
        info["onnxruntime_device"] = ort.get_device()
    except Exception as exc:  # broken install: say so, keep going
        ort = None
        info["warnings"].append(f"onnxruntime does not import: {exc}")
    try:
        import cv2

        info["versions"]["opencv"] = cv2.__version__
    except Exception as exc:
        info["warnings"].append(f"OpenCV does not import: {exc}")

    for module, dists in CONFLICTS.items():
        present = {d: v for d in dists if (v := _dist_version(d)) is not None}
        info["distributions"].update(present)
        if len(present) > 1:
            names = " and ".join(present)
            info["warnings"].append(
                f"{names} are all installed; they overwrite each other's `{module}` module: uninstall all of them "
                f"and install just one (pip uninstall -y {' '.join(present)} && pip install {_preferred(module, present)})"
            )

    from ..runtime.providers import plan_providers

    if ort is not None:
        info["providers_available"] = list(ort.get_available_providers())
        try:
            plan = plan_providers(device)
            info["device"] = {"requested": device, "planned": plan.primary, "ok": True}
        except Exception as exc:
            info["device"] = {"requested": device, "planned": None, "ok": False, "error": str(exc)}

    try:
        from .. import _native

        info["native"] = {"loaded": True, "path": getattr(_native, "__file__", None)}
    except ImportError as exc:
        info["native"] = {"loaded": False, "error": str(exc)}
        info["warnings"].append("the C++ extension fer_edge._native is not built; inference works without it, "
                                "reading FER2013 CSVs (data, train, eval) does not")

    from ..runtime.default_model import default_model_path, sample_image_path

    path = default_model_path(must_exist=False)
    model: dict[str, Any] = {"path": str(path), "present": path.is_file()}
    if path.is_file() and ort is not None:
        try:
            from ..runtime.model import FerModel

            # An unavailable device is reported under "device"; the model is still checked, on the CPU.
            device_ok = info.get("device", {}).get("ok", False)
            m = FerModel.load(path, device=device if device_ok else "cpu")
            model.update(m.summary())
            model["providers"] = m.providers
            model["valid"] = True
        except Exception as exc:
            model["valid"] = False
            model["error"] = str(exc)
            info["warnings"].append(f"the default model does not load: {exc}")
    elif not path.is_file():
        info["warnings"].append("no default model is installed; pass --model PATH to infer/webcam")
    info["default_model"] = model
    try:
        info["sample_image"] = str(sample_image_path())
    except Exception as exc:
        info["sample_image"] = None
        info["warnings"].append(str(exc))
    info["torch_imported"] = "torch" in sys.modules
    return info


def _preferred(module: str, present: dict[str, str]) -> str:
    if module == "onnxruntime":
        return "onnxruntime-gpu" if "onnxruntime-gpu" in present else "onnxruntime"
    return "opencv-python"


def run(args: argparse.Namespace) -> int:
    info = collect(args.device)
    if args.json:
        jsonout.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return _exit_code(info)
    v = info["versions"]
    print(f"fer-edge     {info['fer_edge']}  (Python {info['python']}, {info['platform']})")
    for k in ("numpy", "onnxruntime", "opencv"):
        print(f"{k:<12} {v.get(k, 'not importable')}")
    print(f"{'torch':<12} {v.get('torch') or 'not installed (needed only for training: the [train] extra)'}")
    if info["distributions"]:
        print("installed    " + ", ".join(f"{d}=={ver}" for d, ver in info["distributions"].items()))
    if "providers_available" in info:
        print(f"providers    {', '.join(info['providers_available'])}")
        d = info["device"]
        print(f"device       {d['requested']} -> {d['planned']}" if d["ok"] else f"device       {d['requested']}: {d['error']}")
    n = info["native"]
    print(f"native ext   {'loaded from ' + str(n['path']) if n['loaded'] else 'NOT loaded (' + n['error'] + ')'}")
    m = info["default_model"]
    if m["present"] and m.get("valid"):
        acc, own = m.get("val_accuracy"), m.get("publictest_accuracy")
        if isinstance(own, (int, float)):
            acc_s = f", PublicTest accuracy {own:.4f} (this file)"
        else:
            acc_s = f", val accuracy {acc:.3f} (its checkpoint)" if isinstance(acc, (int, float)) else ""
        print(f"model        {m['path']}")
        print(f"             {m['model']}, {m['channels']}x{m['input_size']}x{m['input_size']}, mean {m['mean']:.2f} "
              f"std {m['std']:.2f}{acc_s}; runs on {m['device']}")
        print(f"             classes: {', '.join(m['classes'])}")
    else:
        print(f"model        {m['path']} ({'invalid: ' + m.get('error', '') if m['present'] else 'missing'})")
    print(f"sample image {info['sample_image']}")
    for w in info["warnings"]:
        print(f"warning: {w}")
    return _exit_code(info)


def _exit_code(info: dict[str, Any]) -> int:
    """5 when the device asked for cannot be used (as for infer/webcam), said on stderr too (the
    report itself is on stdout, where a script may not look), else 0."""
    from ..errors import printable
    from .exitcodes import EXIT_DEVICE, EXIT_OK

    device = info.get("device", {})
    if device.get("ok", True):
        return EXIT_OK
    print(f"fer-edge: error: {printable(str(device.get('error')))}", file=sys.stderr)
    return EXIT_DEVICE
