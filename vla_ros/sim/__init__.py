"""The demo world (MuJoCo): scene, scripted expert, demonstration recorder, evaluation.

Rendering is headless: EGL unless MUJOCO_GL says otherwise (osmesa also works).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
