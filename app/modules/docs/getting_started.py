"""The getting-started path: its steps, and the code of each step cut from programs a test runs.

The programs live in `app/docs_templates/getting-started/`, one per client (socket.io-client,
@parley/client, python-socketio). Each marks its steps with `[step NAME]` … `[end]` comments; the
`/ws-docs` page and the README show those regions, and
`tests/e2e/docs/test_getting_started_programs.py` runs the whole programs against a live server, so
the code shown cannot rot.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SNIPPETS_DIR = Path(__file__).resolve().parents[2] / "docs_templates" / "getting-started"
README_START = "<!-- getting-started: generated from app/docs_templates/getting-started; do not edit -->"
README_END = "<!-- getting-started: end -->"
_REGION = re.compile(r"^[ \t]*(?://|#) \[step ([a-z-]+)\]\n(.*?)^[ \t]*(?://|#) \[end\]\n", re.M | re.S)


@dataclass(frozen=True, slots=True)
class Program:
    key: str
    label: str
    file: str
    language: str


PROGRAMS = (
    Program("socketio", "JavaScript (socket.io-client)", "socketio-client.mjs", "js"),
    Program("client", "JavaScript (@parley/client)", "parley-client.mjs", "js"),
    Program("python", "Python (python-socketio)", "python-socketio.py", "python"),
)
README_PROGRAMS = ("socketio", "python")


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    title: str
    text: str


STEPS = (
    Step(
        "setup",
        "Before you start",
        "You need two users to talk: create them with `parley users create alice --password …` or "
        "`POST /api/auth/register` `{username, password}`. The programs read the server's address from "
        "`PARLEY_URL`. Every REST answer is the envelope `{success, data, message, error: {code, "
        "message, details}, timestamp}`; the small `api()` helper returns `data` or throws `error`.",
    ),
    Step(
        "login",
        "Log in",
        "`POST /api/auth/login` `{username, password, device}` answers `{access_token, refresh_token, "
        "token_type, expires_in, session_id, user}`. `device` names this client for `LOGIN_POLICY`: "
        "with the default `single_per_device`, a new login with the same `device` ends the older "
        "session on it (its sockets get `force_logout` `duplicate_login`) and other devices stay "
        "logged in; `single` ends every other session, `multi` none. Without `device` every login "
        "counts as the device `default`, so a second app that logs in without one logs the first out.",
    ),
    Step(
        "find-user",
        "Find the user to talk to",
        "`GET /api/users?username=bob` answers `{id, username, display_name}`, or 404 `NOT_FOUND`. "
        "The name must match exactly (case aside); the look-up is rate limited like a write.",
    ),
    Step(
        "create-conversation",
        "Open a conversation",
        '`POST /api/conversations` `{kind: "direct", participant_ids: [id]}` (or `kind: "group"` with '
        "a `title` and several ids; the caller becomes owner). A direct conversation is unique per "
        "pair: asking again answers the existing one. `GET /api/conversations` lists yours, each with "
        "its last message and unread count.",
    ),
    Step(
        "connect",
        "Connect with the token",
        "Connect Socket.IO to the server (path `/socket.io/`, namespace `/`) with `auth: {token}`, "
        "read again on every reconnect. A refused connection gets `connect_error` with `{code, "
        "message}` (see the connect_error codes below). A socket is in `user:{id}`, `session:{id}`, "
        "`broadcast:all` and the `group:` room of each recent conversation, and first receives "
        "`session:ready`: who you are, unread counts, missed announcements and limits.",
    ),
    Step(
        "send-receive",
        "Send and receive",
        "`chat:send` `{conversation_id, body, client_msg_id}` is acked with the stored message and its "
        "`seq`; the other members' sockets receive `chat:message` (the sender's socket only the ack). "
        "Choose `client_msg_id` before the first attempt and keep it for retries: the server stores "
        "one message per id, so a retry after a lost ack duplicates nothing. A conversation numbers "
        "its messages 1, 2, 3 …: remember the last `seq` shown, skip what is older, and sync on a jump.",
    ),
    Step(
        "recover",
        "Recover after a reconnect",
        "After every reconnect the server sends `session:ready` again. Answer it with one `chat:sync` "
        "holding the last seq of every conversation you show (and of those `session:ready.unread` "
        "names). An entry with `recovered: false` had more than `limit` new messages: page the rest "
        "with `GET /api/conversations/{id}/messages?after_seq=…`. An entry with `error` is gone or no "
        "longer yours.",
    ),
    Step(
        "refresh",
        "Refresh the token",
        "An access token lives `expires_in` seconds (`ACCESS_TOKEN_TTL`). Before it ends, trade the "
        "refresh token at `POST /api/auth/refresh` `{refresh_token}` for a new pair and hand the new "
        "access token to the live socket with `auth:refresh`; a socket that does not gets "
        "`force_logout` `token_expired` at expiry. Refresh tokens rotate: each works once, and a "
        "rotated one sent again is refused (401). Treat a refused refresh as the end of the session: "
        "log in again.",
    ),
    Step(
        "force-logout",
        "Handle force_logout",
        "`force_logout` `{reason, message}` comes right before the server closes the socket, which "
        "then does not reconnect by itself. `token_expired`: refresh and connect again. Any other "
        "reason (`duplicate_login`, `logout`, `admin`, `session_revoked`) ends the session: forget "
        "the tokens and show the login screen, and never log in again on your own (two clients on one "
        "device would replace each other for ever). Each reason is explained below.",
    ),
)


@cache
def regions(file: str) -> dict[str, str]:
    """The steps of one program, each dedented, by step name."""
    text = (SNIPPETS_DIR / file).read_text(encoding="utf-8")
    return {name: textwrap.dedent(body).rstrip() for name, body in _REGION.findall(text)}


@dataclass(frozen=True, slots=True)
class StepView:
    step: Step
    code: list[tuple[Program, str]]


def step_views() -> list[StepView]:
    """Every step with its code in each program (a program without the step shows nothing for it)."""
    return [
        StepView(step, [(p, regions(p.file)[step.name]) for p in PROGRAMS if step.name in regions(p.file)])
        for step in STEPS
    ]


def readme_section() -> str:
    """The README's getting-started section, from the same steps and programs."""
    shown = [program for program in PROGRAMS if program.key in README_PROGRAMS]
    parts = [README_START, ""]
    for number, view in enumerate(step_views(), start=1):
        parts += [f"### {number}. {view.step.title}", "", view.step.text, ""]
        for program, code in view.code:
            if program in shown:
                parts += [f"```{program.language}", code, "```", ""]
    client = next(program for program in PROGRAMS if program.key == "client")
    files = ", ".join(program.file for program in PROGRAMS)
    closing = (
        f"The whole programs: `app/docs_templates/getting-started/` ({files}); `{client.file}` does the "
        "same with `@parley/client`, which reconnects, syncs and retries by itself. `/ws-docs` shows "
        "all three side by side."
    )
    parts += [closing, "", README_END]
    return "\n".join(parts)


def replace_readme_section(readme: str) -> str:
    """`readme` with its generated section replaced by the current one."""
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END)
    return readme[:start] + readme_section() + readme[end:]
