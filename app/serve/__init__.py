"""Serving Parley: one process, or a supervisor routing connections to worker processes.

- `node`: uvicorn with Parley's graceful stop, shared by both ways;
- `supervisor`: `parley serve --workers N`, the parent that owns the listening socket, routes every
  connection to the worker that owns its Engine.IO session, and restarts workers that die;
- `worker`: one worker process, serving the connections the supervisor hands it;
- `handoff`: how a connection travels between processes (its socket and the bytes read from it).
"""
