"""A MuJoCo scene for any robot config with a URDF: the robot's kinematics, a table with a cube, cameras.

For closed-loop tests of the nodes on the robots public checkpoints were trained on (SO-101, UR5,
Franka...): the robot is compiled by MuJoCo from the robot config's own URDF, so joint names, joint
axes, link frames and limits are those the policy and the executor use. Plain Python + MuJoCo, no
ROS; `sim_robot` runs it when its `robot_config` parameter names a robot config.

What it simulates:
  - kinematics: every joint of the robot config follows its position command as a first-order lag
    (time constant `tracking_time_constant_s`) capped at the config's `max_velocity` and clipped to its
    position limits, like a stiff position-controlled servo; URDF mimic joints follow their leader
    (MuJoCo compiles them to joint equalities); other movable URDF joints stay at their start value;
  - a table (top at the robot base's height, z = 0), a cube on it (placed by the episode seed), the
    floor below;
  - cameras: one per robot-config camera. A camera whose name says wrist/hand/gripper/eef/tool rides on the
    end-effector link (`end_effector.link`, else `workspace.link`, else the last joint's child link),
    looking along the link's z axis (the approach axis of panda_hand_tcp, tool0 and so101's
    gripper_frame_link); any other camera is fixed in the scene (`top`/`up`/`overhead` above the
    table, `side`/`left`/`right` beside it, anything else in front of the robot, facing it).
What it does not: dynamics (no gravity, torques, contacts or collisions on the robot: it moves
through the table and the cube, and the cube never moves during an episode), grasping, a task with a success
criterion (the outcome is always `none`; the instruction is a fixed text).

Meshes: the URDF's STL/OBJ meshes are drawn when the files are found (`package://<pkg>/...` is
looked up in the URDF's ancestor folders, as example-robot-data installs them); a link whose visual
meshes cannot be loaded (e.g. COLLADA .dae, which MuJoCo does not read) is drawn with its collision
meshes, and a link with neither gets capsules along its kinematic chain. `meshes=False` draws
capsules only. Units: metres, radians, seconds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from vla_ros.config import RobotConfig, load_robot_config
from vla_ros.paths import resolve_package_path
from vla_ros.sim.rendering import OffscreenCameras

DEFAULT_INSTRUCTION = "pick up the red cube"
TIMESTEP_S = 0.002
TRACKING_TIME_CONSTANT_S = 0.03
TABLE_HEIGHT_M = 0.75  # the floor is this far below the table top (the robot base)
MESH_EXTENSIONS = (".stl", ".obj")
MAX_MESH_FACES = 4000  # STL meshes with more triangles are simplified (vertex clustering) for CPU rendering
MESH_GRID_CELLS = 40
WRIST_WORDS = ("wrist", "hand", "gripper", "eef", "tool")
TOP_WORDS = ("top", "up", "overhead", "bird")
SIDE_WORDS = ("side", "left", "right")


@dataclass(frozen=True)
class UrdfTask:
    """What an episode asks for: a fixed instruction (there is no success criterion)."""

    instruction: str


class UrdfRobotSim:
    """The robot of a robot config (its URDF) on a table with a cube; commands are joint positions in
    the config's joint order, shape (len(joint_names),)."""

    def __init__(
        self,
        robot: RobotConfig | str,
        image_size: tuple[int, int] = (128, 128),
        initial_positions: np.ndarray | list[float] | None = None,
        instruction: str = DEFAULT_INSTRUCTION,
        meshes: bool = True,
        tracking_time_constant_s: float = TRACKING_TIME_CONSTANT_S,
    ):
        self.config = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
        cfg = self.config
        if not cfg.urdf:
            raise ValueError(f"{cfg.source}: the URDF sim needs the robot config's `urdf`")
        self.urdf_path = resolve_package_path(cfg.urdf)
        self.joint_names = tuple(cfg.joint_names)
        self.camera_names = tuple(c.name for c in cfg.cameras)
        self.image_size = image_size
        self.instruction = instruction
        self.tracking_time_constant_s = float(tracking_time_constant_s)
        self.ee_link = _end_effector_link(cfg, self.urdf_path)
        self.task = UrdfTask(instruction)
        self.outcome = "none"

        self.model, self.scene_scale_m = _build_model(cfg, self.urdf_path, self.ee_link, image_size, meshes)
        self.data = mujoco.MjData(self.model)
        self._cameras = OffscreenCameras(self.model, self.data, image_size)

        missing = [j for j in self.joint_names if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, j) < 0]
        if missing:
            raise ValueError(f"{cfg.source}: joints {missing} are not joints of {self.urdf_path}")
        joints = [self.model.joint(j) for j in self.joint_names]
        bad = [
            j.name
            for j in joints
            if int(self.model.jnt_type[j.id])
            not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        ]
        if bad:
            raise ValueError(f"{cfg.source}: joints {bad} are neither revolute nor prismatic")
        self._qpos_idx = np.array([j.qposadr[0] for j in joints])
        self._dof_idx = np.array([j.dofadr[0] for j in joints])
        self._lower = np.asarray(cfg.limits.min_position, dtype=float)
        self._upper = np.asarray(cfg.limits.max_position, dtype=float)
        vmax = np.asarray(cfg.limits.max_velocity, dtype=float)
        self._vmax = np.where(np.isfinite(vmax) & (vmax > 0), vmax, np.inf)
        self._mimics = self._joint_equalities()
        self._cube_geom = self.model.geom("cube").id
        self._cube_home = self.model.geom_pos[self._cube_geom].copy()
        self._cube_jitter_m = 0.08 * self.scene_scale_m

        if initial_positions is not None and len(initial_positions) > 0:
            home = np.asarray(initial_positions, dtype=float)
            if home.shape != (len(self.joint_names),) or not np.all(np.isfinite(home)):
                raise ValueError(
                    f"initial_positions must be {len(self.joint_names)} finite numbers "
                    f"({', '.join(self.joint_names)}), got {list(np.atleast_1d(home))}"
                )
        else:
            home = np.asarray(cfg.home, dtype=float) if cfg.home is not None else np.zeros(len(self.joint_names))
        self.home = np.clip(home, self._lower, self._upper)
        self._q = self.home.copy()
        self._v = np.zeros(len(self.joint_names))
        self._target = self.home.copy()
        self.reset(seed=0)

    # --- episode -------------------------------------------------------------------------
    def reset(self, seed: int, task: UrdfTask | None = None) -> UrdfTask:
        """Robot at its start pose, at rest; the cube moved by a few centimetres from `seed`."""
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.task = task if task is not None else UrdfTask(self.instruction)
        offset = rng.uniform(-1.0, 1.0, size=2) * self._cube_jitter_m
        self.model.geom_pos[self._cube_geom] = self._cube_home + np.array([offset[0], offset[1], 0.0])
        self._q = self.home.copy()
        self._v = np.zeros(len(self.joint_names))
        self._target = self.home.copy()
        self._write_state()
        self.outcome = "none"
        return self.task

    # --- stepping ------------------------------------------------------------------------
    def set_command(self, q_target: np.ndarray) -> None:
        """Joint position targets in the config's joint order, clipped to the position limits."""
        q = np.asarray(q_target, dtype=float)
        if q.shape != (len(self.joint_names),) or not np.all(np.isfinite(q)):
            raise ValueError(f"command must be {len(self.joint_names)} finite numbers, got {q!r}")
        self._target = np.clip(q, self._lower, self._upper)

    def advance(self, duration_s: float) -> None:
        """Move the joints toward the command for `duration_s` (whole 2 ms steps)."""
        dt = TIMESTEP_S
        tau = max(self.tracking_time_constant_s, dt)
        q, v = self._q, self._v
        for _ in range(max(1, round(duration_s / dt))):
            v = np.clip((self._target - q) / tau, -self._vmax, self._vmax)
            q = q + v * dt
            self.data.time += dt
        self._q, self._v = q, v
        self._write_state()

    @property
    def time_s(self) -> float:
        return float(self.data.time)

    def joint_positions(self) -> np.ndarray:
        return self._q.copy()

    def joint_velocities(self) -> np.ndarray:
        return self._v.copy()

    # --- geometry ------------------------------------------------------------------------
    def link_position(self, link: str) -> np.ndarray:
        """(3,) position of a URDF link in the world (= the URDF root's frame; the base is at the origin)."""
        return self.data.xpos[self.model.body(link).id].copy()

    def ee_position(self) -> np.ndarray:
        return self.link_position(self.ee_link)

    def cube_position(self) -> np.ndarray:
        return self.model.geom_pos[self._cube_geom].copy()

    # --- cameras -------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """RGB image (H, W, 3) uint8 from one of the robot config's cameras."""
        if camera not in self.camera_names:
            raise ValueError(f"unknown camera {camera!r} (cameras: {list(self.camera_names)})")
        return self._cameras.render(camera)

    def close(self) -> None:
        self._cameras.close()

    # --- internals -----------------------------------------------------------------------
    def _joint_equalities(self) -> list[tuple[int, int, np.ndarray]]:
        """(follower qpos, leader qpos, polynomial coefficients) of the model's joint equalities (URDF mimic)."""
        out = []
        for i in range(self.model.neq):
            if int(self.model.eq_type[i]) != int(mujoco.mjtEq.mjEQ_JOINT) or self.model.eq_obj2id[i] < 0:
                continue
            follower = self.model.jnt_qposadr[self.model.eq_obj1id[i]]
            leader = self.model.jnt_qposadr[self.model.eq_obj2id[i]]
            out.append((follower, leader, self.model.eq_data[i, :5].copy()))
        return out

    def _write_state(self) -> None:
        self.data.qpos[self._qpos_idx] = self._q
        self.data.qvel[:] = 0.0
        self.data.qvel[self._dof_idx] = self._v
        for follower, leader, c in self._mimics:
            x = self.data.qpos[leader]
            self.data.qpos[follower] = c[0] + c[1] * x + c[2] * x**2 + c[3] * x**3 + c[4] * x**4
        mujoco.mj_forward(self.model, self.data)


# --- model building ------------------------------------------------------------------------


def _end_effector_link(cfg: RobotConfig, urdf_path: Path) -> str:
    if cfg.end_effector is not None:
        return cfg.end_effector.link
    if cfg.workspace is not None:
        return cfg.workspace.link
    root = ET.parse(urdf_path).getroot()
    for joint in root.findall("joint"):
        if joint.get("name") == cfg.joint_names[-1]:
            return joint.find("child").get("link")
    raise ValueError(f"{cfg.source}: joint {cfg.joint_names[-1]!r} is not in {urdf_path}")


def _build_model(
    cfg: RobotConfig, urdf_path: Path, ee_link: str, image_size, meshes: bool
) -> tuple[mujoco.MjModel, float]:
    """The URDF compiled by MuJoCo, plus table, cube, floor, lights and cameras. Falls back to capsules
    when a mesh file cannot be compiled."""
    try:
        return _compile_scene(cfg, urdf_path, ee_link, image_size, meshes)
    except ValueError:
        if not meshes:
            raise
        return _compile_scene(cfg, urdf_path, ee_link, image_size, False)


def _compile_scene(
    cfg: RobotConfig, urdf_path: Path, ee_link: str, image_size, meshes: bool
) -> tuple[mujoco.MjModel, float]:
    """(model, scene scale): the scale is the arm's size (metres), which sizes the table, cube and camera placement."""
    root = ET.parse(urdf_path).getroot()
    bare_links = _choose_visuals(root, urdf_path, meshes)
    scale = _chain_length(root, ee_link)
    extension = root.find("mujoco")
    extension = extension if extension is not None else ET.SubElement(root, "mujoco")
    compiler = extension.find("compiler")
    compiler = compiler if compiler is not None else ET.SubElement(extension, "compiler")
    # keep every URDF link (fixed joints too: the end effector and camera frames), draw visuals,
    # give massless links a token mass (the robot is moved kinematically; masses do not matter)
    compiler.attrib.update(
        fusestatic="false", discardvisual="false", strippath="false", boundmass="0.001", boundinertia="1e-6"
    )
    spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    spec.option.timestep = TIMESTEP_S
    for mesh in spec.meshes:
        _simplify_mesh(mesh)
    for geom in spec.geoms:  # the robot is drawn, never collides
        geom.contype, geom.conaffinity = 0, 0
    radius = float(np.clip(0.03 * scale, 0.008, 0.045))
    for link, segments in _skeleton(root, bare_links).items():
        body = spec.body(link)
        if body is None:
            continue
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0], rgba=[0.3, 0.3, 0.35, 1], contype=0, conaffinity=0
        )
        for end in segments:
            if np.linalg.norm(end) > 1e-4:
                body.add_geom(
                    type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                    fromto=[0, 0, 0, *end],
                    size=[0.8 * radius, 0, 0],
                    rgba=[0.85, 0.85, 0.88, 1],
                    contype=0,
                    conaffinity=0,
                )
    _add_scene(spec, cfg, scale)
    ee_body = spec.body(ee_link)
    if ee_body is None:
        raise ValueError(f"{cfg.source}: end-effector link {ee_link!r} is not a link of {urdf_path}")
    for cam in cfg.cameras:
        _add_camera(spec, ee_body, cam.name, scale)
    height, width = image_size
    spec.visual.global_.offwidth = max(int(width), spec.visual.global_.offwidth)
    spec.visual.global_.offheight = max(int(height), spec.visual.global_.offheight)
    return spec.compile(), scale


def _read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (3F, 3), faces (F, 3)) of a binary or ASCII STL file, one vertex per face corner."""
    raw = path.read_bytes()
    count = int(np.frombuffer(raw[80:84], dtype="<u4")[0]) if len(raw) >= 84 else -1
    if len(raw) == 84 + 50 * count:  # binary: 12 floats (normal, 3 vertices) and 2 bytes per triangle
        record = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
        vertices = np.frombuffer(raw, dtype=record, count=count, offset=84)["vertices"].reshape(-1, 3)
    else:
        values = [
            line.split()[1:4]
            for line in raw.decode("ascii", "replace").splitlines()
            if line.strip().startswith("vertex")
        ]
        vertices = np.array(values, dtype=float).reshape(-1, 3)
    return vertices.astype(float), np.arange(len(vertices)).reshape(-1, 3)


def _simplify_mesh(mesh, max_faces: int = MAX_MESH_FACES, cells: int = MESH_GRID_CELLS) -> None:
    """Replace a large STL mesh by a vertex-clustered copy (vertices merged on a grid of `cells` per
    longest side): the arm's look at a tenth of the triangles, since software rendering is bound by
    their count (SO-101's meshes: 320k triangles, 22 ms a frame; simplified 2-3 ms)."""
    path = Path(mesh.file)
    if path.suffix.lower() != ".stl" or not path.is_file():
        return
    vertices, faces = _read_stl(path)
    if len(faces) <= max_faces:
        return
    lower = vertices.min(axis=0)
    cell = max(float(np.ptp(vertices, axis=0).max()) / cells, 1e-9)
    index = np.floor((vertices - lower) / cell).astype(np.int64)
    side = int(index.max()) + 1
    _, cluster = np.unique((index[:, 0] * side + index[:, 1]) * side + index[:, 2], return_inverse=True)
    cluster = cluster.reshape(-1)
    merged = np.zeros((cluster.max() + 1, 3))
    np.add.at(merged, cluster, vertices)
    merged /= np.bincount(cluster)[:, None]
    tri = cluster[faces]
    tri = tri[(tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])]
    if len(tri) == 0:
        return
    mesh.file = ""
    mesh.uservert = merged.flatten().tolist()
    mesh.userface = tri.flatten().tolist()


def _chain_length(root: ET.Element, link: str) -> float:
    """Sum of the joint offsets from the URDF root to `link` (metres): the arm's size, which scales the scene."""
    parent_joint = {j.find("child").get("link"): j for j in root.findall("joint")}
    length, current, seen = 0.0, link, set()
    while current in parent_joint and current not in seen:
        seen.add(current)
        joint = parent_joint[current]
        length += float(np.linalg.norm(_floats(joint.find("origin"), "xyz")))
        current = joint.find("parent").get("link")
    return float(np.clip(length, 0.2, 3.0))


def _floats(element: ET.Element | None, key: str, n: int = 3) -> np.ndarray:
    if element is None or element.get(key) is None:
        return np.zeros(n)
    return np.array([float(x) for x in element.get(key).split()])


def _resolve_mesh(filename: str, urdf_path: Path) -> Path | None:
    """A mesh file name as URDFs write it (package://pkg/..., file://..., relative, absolute), or None."""
    if filename.startswith("package://"):
        package, _, rest = filename[len("package://") :].partition("/")
        for folder in urdf_path.resolve().parents:  # <share>/<pkg>/... as colcon and example-robot-data install
            if folder.name == package and (folder / rest).is_file():
                return folder / rest
            if (folder / "share" / package / rest).is_file():
                return folder / "share" / package / rest
        return None
    if filename.startswith("file://"):
        filename = filename[len("file://") :]
    path = Path(filename)
    path = path if path.is_absolute() else urdf_path.parent / path
    return path if path.is_file() else None


def _loadable(element: ET.Element, urdf_path: Path, meshes: bool) -> bool:
    """Can MuJoCo draw this <visual>/<collision>? Rewrites a found mesh's file name to its absolute path."""
    geometry = element.find("geometry")
    if geometry is None or len(geometry) == 0:
        return False
    mesh = geometry.find("mesh")
    if mesh is None:
        return True  # box, cylinder, sphere
    if not meshes:
        return False
    path = _resolve_mesh(mesh.get("filename", ""), urdf_path)
    if path is None or path.suffix.lower() not in MESH_EXTENSIONS:
        return False
    mesh.set("filename", str(path))
    return True


def _choose_visuals(root: ET.Element, urdf_path: Path, meshes: bool) -> set[str]:
    """Keep per link the visuals MuJoCo can draw (else its drawable collision geometry, as visuals);
    drop every collision element. Returns the links left with nothing to draw."""
    bare = set()
    for link in root.findall("link"):
        visuals, collisions = link.findall("visual"), link.findall("collision")
        for element in visuals + collisions:
            link.remove(element)
        keep = [v for v in visuals if _loadable(v, urdf_path, meshes)]
        if not keep:
            keep = [c for c in collisions if _loadable(c, urdf_path, meshes)]
            for c in keep:
                c.tag = "visual"
        for element in keep:
            link.append(element)
        if not keep:
            bare.add(link.get("name"))
    return bare


def _skeleton(root: ET.Element, links: set[str]) -> dict[str, list[np.ndarray]]:
    """Per link to draw as capsules: the offsets (in its frame) of its child joints, or of its centre of mass."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in links}
    for joint in root.findall("joint"):
        parent = joint.find("parent").get("link")
        if parent in out:
            out[parent].append(_floats(joint.find("origin"), "xyz"))
    for link in root.findall("link"):
        name = link.get("name")
        if name in out and not out[name]:
            inertial = link.find("inertial")
            if inertial is not None:
                out[name].append(2.0 * _floats(inertial.find("origin"), "xyz"))
    return out


def _add_scene(spec: mujoco.MjSpec, cfg: RobotConfig, scale: float) -> None:
    """Floor, a table whose top is the base's height (z = 0), a red cube in front of the robot (+x), lights."""
    world = spec.worldbody
    work = _work_point(cfg, scale)
    spec.stat.center = [0.5 * work[0], 0.0, 0.2 * scale]
    spec.stat.extent = 2.0 * scale
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        pos=[0, 0, -TABLE_HEIGHT_M],
        size=[0, 0, 0.05],
        rgba=[0.35, 0.37, 0.4, 1],
    )
    half = [0.75 * scale, 0.65 * scale, 0.02]
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[0.3 * scale, 0.0, -half[2]],  # from 0.45 scale behind the base to 1.05 scale in front
        size=half,
        rgba=[0.62, 0.5, 0.38, 1],
    )
    cube = 0.04 * scale  # half size
    world.add_geom(
        name="cube",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[work[0], work[1], cube],
        size=[cube, cube, cube],
        rgba=[0.85, 0.15, 0.12, 1],
    )
    world.add_geom(  # a coloured target mat beside the cube: something more for the cameras to see
        name="mat",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[work[0], work[1] - 0.3 * scale, 0.001],
        size=[0.08 * scale, 0.08 * scale, 0.001],
        rgba=[0.15, 0.35, 0.8, 1],
    )
    world.add_light(pos=[0.3 * scale, 0.0, 2.5 * scale], dir=[0, 0, -1], diffuse=[0.7, 0.7, 0.7], castshadow=False)


def _work_point(cfg: RobotConfig, scale: float) -> np.ndarray:
    """Where the cube sits (x, y on the table): in front of the base, at a third of the arm's size."""
    x = 0.33 * scale
    if cfg.workspace is not None:  # keep it inside the workspace box when there is one
        lo, hi = np.array(cfg.workspace.min), np.array(cfg.workspace.max)
        x = float(np.clip(x, lo[0], hi[0]))
        return np.array([x, float(np.clip(0.0, lo[1], hi[1]))])
    return np.array([x, 0.0])


def _camera_kind(name: str) -> str:
    lowered = name.lower()
    for kind, words in (("wrist", WRIST_WORDS), ("top", TOP_WORDS), ("side", SIDE_WORDS)):
        if any(w in lowered for w in words):
            return kind
    return "front"


def _look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at `eye` looking at `target` (cameras look along -z)."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:
        right = np.cross(forward, (1.0, 0.0, 0.0))
    right /= np.linalg.norm(right)
    cam_y = np.cross(-forward, right)
    rot = np.column_stack([right, cam_y, -forward])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.flatten())
    return quat


def _add_camera(spec: mujoco.MjSpec, ee_body, name: str, scale: float) -> None:
    kind = _camera_kind(name)
    s = scale
    if kind == "wrist":  # on the end effector, behind and beside the tool, looking ahead along its z axis
        eye = np.array([0.08 * s, 0.0, -0.03 * s])
        ee_body.add_camera(name=name, pos=eye, quat=_look_at(eye, [0.0, 0.0, 0.35 * s], up=(1.0, 0.0, 0.0)), fovy=75)
        return
    eyes = {
        "front": ([0.85 * s, 0.0, 0.5 * s], [0.15 * s, 0.0, 0.2 * s]),
        "top": ([0.3 * s, 0.0, 1.6 * s], [0.3 * s, 0.0, 0.0]),
        "side": ([0.35 * s, -1.25 * s, 0.6 * s], [0.3 * s, 0.0, 0.15 * s]),
    }
    eye, target = eyes[kind]
    up = (1.0, 0.0, 0.0) if kind == "top" else (0.0, 0.0, 1.0)
    spec.worldbody.add_camera(name=name, pos=eye, quat=_look_at(np.array(eye), np.array(target), up=up), fovy=60)
