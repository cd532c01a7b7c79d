"""ROS side of the parameter schemas (vla_ros/params.py): declare, read, validate at run time."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter

from vla_ros.core.types import JointLimits
from vla_ros.params import JOINT_LIMIT_KEYS, Param, Schema, joint_limits_from_values

_LIST_TYPES = {
    "float_list": Parameter.Type.DOUBLE_ARRAY,
    "str_list": Parameter.Type.STRING_ARRAY,
    "int_list": Parameter.Type.INTEGER_ARRAY,
}


def descriptor(p: Param) -> ParameterDescriptor:
    return ParameterDescriptor(description=p.description, additional_constraints=p.rule(), read_only=not p.changeable)


def declare(node, schema: Schema) -> dict[str, Any]:
    """Declare every parameter of `schema` on `node`, validate the values it starts with (ValueError
    naming the parameter), reject invalid run-time changes, and return the values."""
    values = {}
    for p in schema:
        if p.default == []:  # an empty list has no type of its own
            value = node.declare_parameter(p.name, _LIST_TYPES[p.kind], descriptor(p)).value
            value = list(value) if value is not None else []
        else:
            value = node.declare_parameter(p.name, p.default, descriptor(p)).value
            value = list(value) if isinstance(value, (list, tuple)) else value
        problem = p.problem(p.coerce(value))
        if problem:
            raise ValueError(f"parameter {p.name}: {problem}")
        values[p.name] = p.coerce(value)
    node.add_on_set_parameters_callback(lambda params: validate_changes(schema, params))
    return values


def validate_changes(schema: Schema, params: list[Parameter]) -> SetParametersResult:
    """Refuse a run-time change that breaks its parameter's rule; the reason names key, value and rule."""
    for param in params:
        p = schema.get(param.name)
        if p is None:
            continue
        value = param.value
        value = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value
        problem = p.problem(p.coerce(value))
        if problem:
            return SetParametersResult(successful=False, reason=f"{param.name}: {problem}")
    return SetParametersResult(successful=True)


def declare_joint_limits(node, joints: tuple[str, ...]) -> JointLimits:
    """Declare `joint_limits.<joint>.<key>` (ros2_control names; unset acceleration/jerk = unlimited)
    and build JointLimits with the same rules as the robot config (ValueError naming the parameter)."""
    values = {}
    for j in joints:
        for k in JOINT_LIMIT_KEYS:
            name = f"joint_limits.{j}.{k}"
            d = ParameterDescriptor(
                description=f"{k} of joint {j} (radians, seconds)", read_only=True, dynamic_typing=True
            )
            values[(j, k)] = node.declare_parameter(name, None, d).value
    return joint_limits_from_values(joints, lambda j, k: values[(j, k)], "parameter joint_limits")
