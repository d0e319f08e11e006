"""Getting started with python-socketio (pip install "python-socketio[asyncio_client]"): log in, find a
user, open a conversation, chat, recover after a reconnect, refresh the token, handle force_logout.

Run against a server: PARLEY_URL=http://127.0.0.1:8000 python python-socketio.py
"""

# [step setup]
import asyncio
import logging
import os
import uuid

import aiohttp
import socketio

BASE = os.environ.get("PARLEY_URL", "http://127.0.0.1:8000")
ME = {"username": os.environ.get("PARLEY_USERNAME", "alice"), "password": os.environ.get("PARLEY_PASSWORD", "correct-horse-42")}
PEER = {"username": os.environ.get("PARLEY_PEER", "bob"), "password": os.environ.get("PARLEY_PEER_PASSWORD", "staple-battery-42")}
log = logging.getLogger("chat")


class ParleyError(Exception):
    def __init__(self, error):
        super().__init__(f"{error['code']}: {error['message']}")
        self.code, self.details = error["code"], error.get("details") or {}


async def api(http, path, method="GET", token=None, body=None):
    """One REST call; every answer is {success, data, message, error: {code, message, details}, timestamp}."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, BASE + path, json=body, headers=headers) as response:
        answer = await response.json()
    if not answer["success"]:
        raise ParleyError(answer["error"])
    return answer["data"]
# [end]


async def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    async with aiohttp.ClientSession() as http:
        # [step login]
        tokens = await api(http, "/api/auth/login", "POST", body={**ME, "device": "laptop"})
        log.info("logged in as %s", tokens["user"]["username"])
        # [end]

        # [step find-user]
        peer = await api(http, f"/api/users?username={PEER['username']}", token=tokens["access_token"])
        log.info("found %s", peer["username"])
        # [end]

        # [step create-conversation]
        conversation = await api(
            http, "/api/conversations", "POST", tokens["access_token"],
            {"kind": "direct", "participant_ids": [peer["id"]]},
        )
        log.info("conversation %s", conversation["id"])
        # [end]

        # [step connect]
        sio = socketio.AsyncClient(reconnection=True)
        ready = asyncio.get_running_loop().create_future()

        @sio.event
        async def connect_error(data):
            log.info("refused: %s", data.get("code") if isinstance(data, dict) else data)

        sio.on("session:ready", lambda payload: ready.done() or ready.set_result(payload))
        await sio.connect(BASE, auth=lambda: {"token": tokens["access_token"]}, transports=["websocket"])
        log.info("connected; %s unread", ((await ready)["unread"] or {}).get("total", 0))
        # [end]

        # [step send-receive]
        seen = {conversation["id"]: conversation["last_seq"]}  # the last seq shown, per conversation
        arrived = asyncio.Queue()

        async def show(message):
            last = seen.get(message["conversation_id"], 0)
            if message["seq"] <= last:
                return  # shown already (a live copy and a synced copy meet)
            if message["seq"] > last + 1:
                return await sync_all()  # a gap: fetch what came between
            seen[message["conversation_id"]] = message["seq"]
            who = "me" if message["sender_id"] == tokens["user"]["id"] else peer["username"]
            log.info("#%s %s: %s", message["seq"], who, message["body"])
            arrived.put_nowait(message)

        @sio.on("chat:message")
        async def on_message(payload):
            await show(payload["message"])

        async def send(body):
            payload = {"conversation_id": conversation["id"], "body": body, "client_msg_id": str(uuid.uuid4())}
            while True:
                try:
                    ack = await sio.call("chat:send", payload, timeout=10)
                except socketio.exceptions.TimeoutError:
                    continue  # retry with the same client_msg_id: stored once whatever happens
                if ack["ok"]:
                    return await show(ack["data"]["message"])
                if ack["error"]["code"] != "RATE_LIMITED":
                    raise ParleyError(ack["error"])
                await asyncio.sleep(ack["error"]["details"]["retry_after"])

        await send("Hello!")
        await arrived.get()
        # [end]

        # The peer answers over REST, as another app of theirs would.
        peer_tokens = await api(http, "/api/auth/login", "POST", body={**PEER, "device": "phone"})

        async def peer_says(body):
            path = f"/api/conversations/{conversation['id']}/messages"
            await api(http, path, "POST", peer_tokens["access_token"], {"body": body})

        await peer_says("Hi there")
        await arrived.get()

        # [step recover]
        async def sync_all(unread=()):
            for entry in unread:
                seen.setdefault(entry["conversation_id"], entry["last_read_seq"])
            cursors = [{"conversation_id": cid, "after_seq": seq} for cid, seq in seen.items()]
            ack = await sio.call("chat:sync", {"conversations": cursors}, timeout=10)
            if not ack["ok"]:
                raise ParleyError(ack["error"])
            for entry in ack["data"]["conversations"]:
                if entry.get("error"):
                    seen.pop(entry["conversation_id"], None)  # gone, or no longer yours
                for message in entry["messages"]:
                    await show(message)
                more = not entry["recovered"]
                while more:
                    after = seen[entry["conversation_id"]]
                    path = f"/api/conversations/{entry['conversation_id']}/messages?after_seq={after}&limit=200"
                    page = await api(http, path, token=tokens["access_token"])
                    for message in page["items"]:
                        await show(message)
                    more = page["has_more"]

        @sio.on("session:ready")
        async def on_ready(payload):
            await sync_all((payload["unread"] or {}).get("conversations", []))
        # [end]

        await sio.disconnect()  # offline for a moment: the peer writes meanwhile
        await peer_says("Are you there?")
        await sio.connect(BASE, auth=lambda: {"token": tokens["access_token"]}, transports=["websocket"])
        await arrived.get()

        # [step refresh]
        used = tokens["refresh_token"]
        tokens = await api(http, "/api/auth/refresh", "POST", body={"refresh_token": tokens["refresh_token"]})
        renewed = await sio.call("auth:refresh", {"token": tokens["access_token"]}, timeout=10)
        log.info("token renewed until %s", renewed["data"]["expires_at"])
        # [end]

        # [step force-logout]
        logged_out = asyncio.get_running_loop().create_future()
        expired = False

        @sio.on("force_logout")
        async def on_force_logout(payload):
            nonlocal tokens, expired
            if payload["reason"] == "token_expired":
                tokens = await api(http, "/api/auth/refresh", "POST", body={"refresh_token": tokens["refresh_token"]})
                expired = True  # the server closes the socket next: connect again then
                return
            log.info("logged out: %s", payload["reason"])  # duplicate_login, logout, admin, session_revoked
            tokens = None  # forget them, show the login screen; never log in again by itself
            logged_out.set_result(payload["reason"])

        @sio.event
        async def disconnect(*_reason):
            nonlocal expired
            if expired:
                expired = False
                auth = {"token": tokens["access_token"]}
                asyncio.get_running_loop().create_task(sio.connect(BASE, auth=auth, transports=["websocket"]))
        # [end]

        await api(http, "/api/auth/login", "POST", body={**ME, "device": "laptop"})  # the same device again
        await logged_out
        try:
            await api(http, "/api/auth/refresh", "POST", body={"refresh_token": used})
        except ParleyError as error:
            log.info("a used refresh token is refused: %s", error.code)
        await sio.disconnect()


asyncio.run(main())
