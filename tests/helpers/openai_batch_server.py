"""A stand-in for OpenAI's Batch API on 127.0.0.1 (files upload, batches create / retrieve / list, output and
error files), answering each request with the stand-in LLM's chat completion (`TextClassifierLLM`), with
faults for the tests:

  * `hold`: jobs stay `in_progress` until it is cleared (a run can be killed while it polls);
  * `expire_after`: a job expires after answering that many requests, the rest go to the error file
    with `batch_expired` (as the API does: not done, not billed);
  * `error_at`: request positions answered in the error file with HTTP 500 (a partial result);
  * `missing_at`: request positions in neither file (no word on them: an unknown outcome);
  * `offlabel_at`: request positions answered with a word that is no label word;
  * `invalid`: the job fails validation (nothing runs);
  * `create_then_500`: batches.create makes the job, then answers 500 (the client cannot know it exists).

`computed` counts the requests the model answered (what the account is billed for); `jobs` the jobs created.
Shapes as in the API reference (Batch object, file object, `{custom_id, response: {status_code, body}, error}`
lines).
"""

from __future__ import annotations

import email.parser
import json
import threading
import time
import uuid
from typing import Any

from examples.ag_news.local_http import LocalServer, QuietHandler, send_json


class StandinBatchServer(LocalServer):
    def __init__(self, llm, model: str = "standin-llm", polls_to_finish: int = 1):
        self.llm, self.model, self.polls_to_finish = llm, model, polls_to_finish
        self.hold = False
        self.expire_after: int | None = None
        self.error_at: set[int] = set()
        self.missing_at: set[int] = set()
        self.offlabel_at: set[int] = set()
        self.invalid = False
        self.create_then_500 = False
        self.lock = threading.Lock()
        self.files: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.computed = 0
        self.chat_requests = 0
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                server._route(self, "GET", b"")

            def do_POST(self):
                server._route(self, "POST", self.rfile.read(int(self.headers.get("Content-Length", 0))))

        super().__init__(Handler)
        self.url = f"{self.base_url}/v1"

    # -- routes -------------------------------------------------------------------------------------
    def _route(self, handler, method: str, body: bytes) -> None:
        path = handler.path.split("?", 1)[0].rstrip("/")
        with self.lock:
            if method == "GET" and path == "/v1/models":
                return send_json(handler, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
            if method == "POST" and path == "/v1/files":
                return send_json(handler, 200, self._upload(handler.headers.get("Content-Type", ""), body))
            if method == "POST" and path == "/v1/batches":
                job = self._create(json.loads(body))
                if self.create_then_500:
                    return send_json(handler, 500, {"error": {"message": "injected: created, then failed"}})
                return send_json(handler, 200, job)
            if method == "GET" and path == "/v1/batches":
                jobs = sorted(self.jobs.values(), key=lambda j: -j["created_at_ns"])
                return send_json(
                    handler, 200, {"object": "list", "data": [self._public(j) for j in jobs], "has_more": False}
                )
            if method == "GET" and path.startswith("/v1/batches/"):
                found = self.jobs.get(path.rsplit("/", 1)[1])
                if found is None:
                    return send_json(handler, 404, {"error": {"message": "no such batch"}})
                return send_json(handler, 200, self._advance(found))
            if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
                stored = self.files.get(path.split("/")[3])
                if stored is None:
                    return send_json(handler, 404, {"error": {"message": "no such file"}})
                return send_json(handler, 200, stored["content"], content_type="application/jsonl")
            if method == "POST" and path == "/v1/chat/completions":
                self.chat_requests += 1
            return send_json(handler, 404, {"error": {"message": f"no route {method} {path}"}})

    def _upload(self, content_type: str, body: bytes) -> dict:
        message = email.parser.BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        parts: Any = message.get_payload()  # multipart: a list of parts
        fields = {part.get_param("name", header="content-disposition"): part for part in parts}
        assert fields["purpose"].get_payload(decode=True) == b"batch"
        file_id = f"file-{uuid.uuid4().hex[:16]}"
        content = fields["file"].get_payload(decode=True)
        self.files[file_id] = {"content": content, "purpose": "batch"}
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": fields["file"].get_filename(),
            "purpose": "batch",
        }

    def _create(self, request: dict) -> dict:
        job_id = f"batch_{uuid.uuid4().hex[:16]}"
        job = {
            "id": job_id,
            "object": "batch",
            "endpoint": request["endpoint"],
            "errors": None,
            "input_file_id": request["input_file_id"],
            "completion_window": request["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "created_at_ns": time.monotonic_ns(),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": request.get("metadata"),
            "polls": 0,
        }
        self.jobs[job_id] = job
        return self._public(job)

    @staticmethod
    def _public(job: dict) -> dict:
        return {k: v for k, v in job.items() if k not in ("created_at_ns", "polls")}

    # -- running a job ------------------------------------------------------------------------------
    def _advance(self, job: dict) -> dict:
        job["polls"] += 1
        if job["status"] == "validating":
            job["status"] = "in_progress"
        elif job["status"] == "in_progress" and not self.hold and job["polls"] > self.polls_to_finish:
            self._run(job)
        return self._public(job)

    def _run(self, job: dict) -> None:
        lines = [json.loads(line) for line in self.files[job["input_file_id"]]["content"].splitlines() if line]
        if self.invalid or any(line["body"].get("model") != self.model for line in lines):
            job["status"] = "failed"
            job["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "injected: invalid"}]}
            return
        output, errors = [], []
        for position, line in enumerate(lines):
            request_id = f"batch_req_{uuid.uuid4().hex[:12]}"
            if position in self.missing_at:
                continue
            if self.expire_after is not None and position >= self.expire_after:
                errors.append(
                    {
                        "id": request_id,
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the completion window expired.",
                        },
                    }
                )
                continue
            if position in self.error_at:
                errors.append(
                    {
                        "id": request_id,
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 500, "request_id": request_id, "body": {"error": {}}},
                        "error": {"code": "server_error", "message": "injected: the server had an error"},
                    }
                )
                continue
            body = line["body"]
            prompt = "\n".join(str(m.get("content", "")) for m in body["messages"])
            answer = self.llm.completion(
                prompt,
                self.model,
                bool(body.get("logprobs")),
                int(body.get("top_logprobs") or 1),
                "Unsure" if position in self.offlabel_at else None,
            )
            self.computed += 1
            output.append(
                {
                    "id": request_id,
                    "custom_id": line["custom_id"],
                    "response": {"status_code": 200, "request_id": request_id, "body": answer},
                    "error": None,
                }
            )
        for key, records in (("output_file_id", output), ("error_file_id", errors)):
            if records:
                file_id = f"file-{uuid.uuid4().hex[:16]}"
                content = "".join(json.dumps(r) + "\n" for r in records).encode()
                self.files[file_id] = {"content": content, "purpose": "batch_output"}
                job[key] = file_id
        job["status"] = "expired" if self.expire_after is not None and self.expire_after < len(lines) else "completed"
        job["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}
