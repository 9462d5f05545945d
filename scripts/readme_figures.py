"""Draw the README's two pictures with a packaged model: docs/sample_annotated.jpg (the sample photo,
annotated as `infer --save-annotated` draws it) and docs/timeline.png (expressions over time on the
sample clip of docs/RUNTIME.md: the sample face moving across a 640x480 background, 300 frames).

    python scripts/readme_figures.py [--model default] [--out docs]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    a = ap.parse_args()
    import cv2

    import fer_edge
    from fer_edge.runtime.default_model import sample_image_path

    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures_runtime import make_face_video  # the clip the runtime docs measure on

    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "ann"
        subprocess.run([sys.executable, "-m", "fer_edge", "infer", str(sample_image_path()), "--model", a.model,
                        "--save-annotated", str(ann), "-q"], check=True)
        shutil.copyfile(next(ann.iterdir()), a.out / "sample_annotated.jpg")
        clip = Path(tmp) / "face.mp4"
        make_face_video(clip, cv2.imread(str(sample_image_path())), frames=300, fps=30.0)
        fer_edge.analyze_video(str(clip), model=a.model).plot(str(a.out / "timeline.png"))
    print(f"wrote {a.out / 'sample_annotated.jpg'} and {a.out / 'timeline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
