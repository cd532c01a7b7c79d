"""Service calls that survive lost answers.

A ROS 2 service answer sent before DDS discovery has matched the caller's reply reader is lost (Fast
DDS logs `failed to send response (timeout)` on the server's side), typically on the first call to a
node that has just started or restarted. `wait_for_service` only says that the server can hear the
caller, not that the caller can hear the server. So:

- a repeatable request (a query, setting a value) is sent again every `ANSWER_WAIT_S` seconds
  until one answer arrives (`call(..., repeatable=True)`);
- a lifecycle transition is not repeatable, and is checked instead (`change_state`): without an
  answer, the node's `get_state` says whether it ran (the target state), never arrived (the source
  state: it is sent again) or is still running (no answer, or a transition state: wait on).

Callers spin their node in another thread (these functions only wait on futures).
"""

from __future__ import annotations

import time
from typing import Callable

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState

ANSWER_WAIT_S = 2.0  # seconds before a repeatable request is sent again, or a transition is checked on
CHANGE_ATTEMPTS = 3  # change_state requests sent at most, when the node says none arrived

# transition name -> (id, the state it leads from, the state it reaches)
TRANSITIONS = {
    "configure": (Transition.TRANSITION_CONFIGURE, State.PRIMARY_STATE_UNCONFIGURED, State.PRIMARY_STATE_INACTIVE),
    "activate": (Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_INACTIVE, State.PRIMARY_STATE_ACTIVE),
    "deactivate": (Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_ACTIVE, State.PRIMARY_STATE_INACTIVE),
    "cleanup": (Transition.TRANSITION_CLEANUP, State.PRIMARY_STATE_INACTIVE, State.PRIMARY_STATE_UNCONFIGURED),
}
TRANSITION_STATES = {
    State.TRANSITION_STATE_CONFIGURING,
    State.TRANSITION_STATE_CLEANINGUP,
    State.TRANSITION_STATE_SHUTTINGDOWN,
    State.TRANSITION_STATE_ACTIVATING,
    State.TRANSITION_STATE_DEACTIVATING,
    State.TRANSITION_STATE_ERRORPROCESSING,
}


def wait_done(future, deadline: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Until `future` is done (True), or the monotonic `deadline` passes or `alive()` turns False (False)."""
    while not future.done():
        if time.monotonic() > deadline or not alive():
            return False
        time.sleep(0.005)
    return True


def call(client, request, timeout_s: float, repeatable: bool = False, alive: Callable[[], bool] = lambda: True):
    """The answer to `request` within `timeout_s` seconds, else TimeoutError (naming the service).
    `repeatable`: sent again every ANSWER_WAIT_S without an answer."""
    deadline = time.monotonic() + timeout_s
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise TimeoutError(f"service {client.srv_name} not available after {timeout_s:g} s")
    while True:
        future = client.call_async(request)
        answer_by = min(deadline, time.monotonic() + ANSWER_WAIT_S) if repeatable else deadline
        if wait_done(future, answer_by, alive):
            return future.result()
        client.remove_pending_request(future)
        if time.monotonic() > deadline or not alive():
            raise TimeoutError(f"no answer from {client.srv_name} after {timeout_s:g} s")


def get_state(client, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> int:
    """A managed node's lifecycle state id through its `get_state` client."""
    return call(client, GetState.Request(), timeout_s, repeatable=True, alive=alive).current_state.id


def change_state(
    change_client,
    get_client,
    step: str,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    log: Callable[[str], None] = lambda _: None,
) -> bool:
    """Run lifecycle transition `step` (a TRANSITIONS key) unless the node is already in its target
    state; True if the node reached it, False if the node refused (its log says why). RuntimeError
    if the node is in neither the source nor the target state; TimeoutError after `timeout_s`."""
    transition_id, source, target = TRANSITIONS[step]
    deadline = time.monotonic() + timeout_s
    current = get_state(get_client, timeout_s, alive)
    if current == target:
        return True
    if current != source:
        raise RuntimeError(f"{change_client.srv_name}: cannot {step} from lifecycle state {current}")
    request = ChangeState.Request()
    request.transition.id = transition_id
    for _ in range(CHANGE_ATTEMPTS):
        future = change_client.call_async(request)
        while not wait_done(future, min(deadline, time.monotonic() + ANSWER_WAIT_S), alive):
            if time.monotonic() > deadline or not alive():
                change_client.remove_pending_request(future)
                raise TimeoutError(f"{step}: no answer from {change_client.srv_name} after {timeout_s:g} s")
            try:
                current = call(get_client, GetState.Request(), ANSWER_WAIT_S, alive=alive).current_state.id
            except TimeoutError:
                continue  # busy in the transition (e.g. configure loading a model)
            if current in TRANSITION_STATES:
                continue
            change_client.remove_pending_request(future)
            if current == target:
                return True
            if current == source:
                log(f"no answer to {step} from {change_client.srv_name}, still in its source state: asking again")
                break
            raise RuntimeError(f"{change_client.srv_name}: {step} left the node in lifecycle state {current}")
        else:
            return future.result().success
    raise TimeoutError(f"{step}: no answer from {change_client.srv_name} after {CHANGE_ATTEMPTS} requests")
