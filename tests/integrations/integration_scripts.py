"""Scripted agents for the integration tests (imported by name: see conftest)."""

from __future__ import annotations

import gymnasium as gym

import toolgym  # noqa: F401 - registers the ids

ENV_IDS = ("MultiHopQA-v0", "ToolMath-v0")


def scripted_actions(env_id: str, seed: int, **env_kwargs) -> list[str]:
    """A scripted agent's messages for episode ``seed``: one message without a call (a format
    penalty), one failing call, then the env's oracle until the episode ends."""
    env = gym.make(env_id, **env_kwargs)
    env.reset(seed=seed)
    base = env.unwrapped
    actions = ["Let me think about it first.", base.call(base.tools[0].name, **{"nonsense": 1})]
    for action in actions:
        env.step(action)
    while True:
        action = base.oracle_action()
        actions.append(action)
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            return actions


def reply_for(actions_by_task: dict[str, list[str]], messages) -> str:
    """The scripted model: find the episode by its task text, answer with its next action."""
    text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "user"))
    done = sum(1 for m in messages if m.get("role") == "assistant")
    for task, actions in actions_by_task.items():
        if task in text:
            return actions[done] if done < len(actions) else "Done."
    raise AssertionError(f"no scripted episode matches the conversation: {text[:300]!r}")


class ScriptedChatServer:
    """A loopback OpenAI-compatible ``/v1/chat/completions`` whose "model" is ``reply_for``:
    frameworks that only talk to an endpoint run their real loop against it."""

    def __init__(self, actions_by_task: dict[str, list[str]]):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        scripts = actions_by_task
        self.requests: list[dict] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict, text: str) -> None:
                """Server-sent events, as OpenAI streams a completion: content, finish, usage, [DONE]."""
                base = {"id": f"chatcmpl-{len(requests)}", "object": "chat.completion.chunk", "created": 0,
                        "model": body.get("model", "scripted")}
                chunks = [
                    {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                          "finish_reason": None}]},
                    {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    {**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
                ]
                data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

            def do_GET(self):  # model listings
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                requests.append(body)
                if not self.path.rstrip("/").endswith("chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                text = reply_for(scripts, body.get("messages", []))
                if body.get("stream"):
                    self._stream(body, text)
                    return
                self._send(200, {
                    "id": f"chatcmpl-{len(requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "scripted"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
