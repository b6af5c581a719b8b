"""The `openai` teacher through OpenAI's Batch API (`teacher.api: batch`): the chat path's questions
(`ckd.teachers.openai_chat`: prompt, verbalizer, scores, identity) asked as one asynchronous job of up to
`teacher.batch_requests` requests, answered within the completion window at `teacher.batch_price_factor` of the
per-1k prices (half price).

    upload   POST /v1/files (purpose=batch)     one JSONL line per input: {custom_id, method, url, body}
    create   POST /v1/batches                   {input_file_id, endpoint: /v1/chat/completions, completion_window}
    poll     GET  /v1/batches/{id}              validating, in_progress, finalizing -> completed, expired,
                                                cancelled or failed
    results  GET  /v1/files/{id}/content        output file (answers) and error file (requests not done)

Under the store and budget of every teacher (`ckd.store`), each input is reserved (counted) in a batch of its
own before the job is submitted, and the job's ids (`remote`: the input file's on upload, the job's on
creation) are recorded in those batches before any polling: a run that dies after the upload resumes the same
job, never submitting the inputs again (a file id without a job is looked up among the account's jobs; only
when no job was created from it are its inputs given back). When a job ends:

  * an answer in the output file: stored (or, not a label word, quarantined with its words and tokens);
  * a request in the error file (expired, cancelled, failed): not done, not billed: its count is given back
    and the run stops saying so (run again to ask again, in a new job);
  * a failed job (its file did not validate): nothing ran, every count is given back;
  * a request in neither file: unknown outcome, it stays counted (lost);
  * a job still running after `teacher.batch_max_wait_s`: the run stops (inputs stay counted), the next polls it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal, NoReturn, TypeVar

import numpy as np

from ckd.errors import TeacherError
from ckd.store.base import REMOTE_DONE
from ckd.teachers.base import AnswerUnusable
from ckd.teachers.openai_chat import OpenAIChatTeacher, rate_limit_wait_s

T = TypeVar("T")

log = logging.getLogger(__name__)

ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"
FINAL = ("completed", "expired", "cancelled", "failed")
WAIT_S = 0.2  # poll period while another run has our inputs in flight


class OpenAIBatchTeacher(OpenAIChatTeacher):
    """`teacher.api: batch`: `ask` submits and polls jobs (`ckd.query.run_query` hands it its session)."""

    api = "batch"

    def predict(self, x: np.ndarray) -> NoReturn:
        raise TeacherError("teacher.api: batch asks through jobs (ckd.query.run_query), not one call at a time")

    # -- the asking loop ---------------------------------------------------------------------------
    def ask(self, session: Any) -> None:
        """Resume the jobs dead runs left, then submit jobs until every selected input has an answer, the
        budget is spent or a job ends badly (`session.fatal`)."""
        from ckd.query import _first_pending

        store, identity = session.store, self.identity
        for remote, items in store.unsettled_remote(identity).items():
            if session.fatal is not None:
                return
            log.info("resuming job %s (%d requests) left by an earlier run", remote, len(items))
            self._finish(session, remote, items)
        while session.fatal is None:
            pending = _first_pending(session.hashes, session.answers)
            if not pending:
                return
            held = store.held_elsewhere(identity, [session.hashes[i] for i in pending], session.run)
            items = []
            for i in (i for i in pending if session.hashes[i] not in held):
                if len(items) == self.settings.batch_requests or store.spent() >= session.budget:
                    break
                reservation = store.reserve(
                    identity, session.run, [int(session.ids[i])], [session.hashes[i]], session.budget
                )
                if reservation is not None:
                    items.append((reservation.batch, int(session.ids[i]), session.hashes[i], i))
            if items:
                session.calls_this_run += len(items)
                self._submit(session, items)
            elif not held:
                return  # the budget is spent
            else:
                time.sleep(WAIT_S)  # another run has these inputs in flight: its answers are ours too
            session.answers.update(store.answers(identity, [session.hashes[i] for i in pending]))

    def _submit(self, session: Any, items: list[tuple[int, int, str, int]]) -> None:
        """Upload the requests, create the job, record both ids before polling."""
        store, batches = session.store, [batch for batch, *_ in items]
        requests = [(f"ckd-{batch}", self._request(str(session.x[row]))) for batch, _, _, row in items]
        lines = [
            json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}) for key, body in requests
        ]
        upload = ("ckd-requests.jsonl", ("\n".join(lines) + "\n").encode())
        try:
            uploaded = self._call(lambda: self.client.files.create(file=upload, purpose="batch"), "upload the requests")
        except TeacherError as error:  # no file, so no job: nothing can have run
            for batch in batches:
                store.mark_refused(batch, str(error))
            session.calls_this_run -= len(batches)
            session._fail(TeacherError(f"{error}; its {len(batches)} calls were given back"))
            return
        store.set_remote(batches, f"file:{uploaded.id}")
        try:
            job = self._call(
                lambda: self.client.batches.create(
                    input_file_id=uploaded.id,
                    endpoint=ENDPOINT,
                    completion_window=self.settings.batch_completion_window,
                    metadata={"ckd_teacher": self.identity[:512]},
                ),
                "create the job",
            )
        except TeacherError:  # perhaps created all the same: look it up by its file, never create a second
            job = self._job_of_file(uploaded.id)
        if job is None:
            self._give_back(session, f"file:{uploaded.id}", items, "no job was created from its file")
            session.calls_this_run -= len(items)
            return
        store.set_remote(batches, f"batch:{job.id}")
        log.info("job %s submitted: %d requests", job.id, len(items))
        session.calls_this_run -= self._finish(session, f"batch:{job.id}", [item[:3] for item in items])

    # -- the provider, with retries where nothing can be paid twice ---------------------------------
    def _call(self, action: Callable[[], T], what: str) -> T:
        """One API call (files, jobs: none of them answers a question); connection errors, 429 and 5xx
        retried with the provider's wait or a backoff; a 4xx is final."""
        openai = self._openai
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            self._wait_for_limits()
            try:
                return action()
            except openai.APIStatusError as error:
                if (error.status_code != 429 and error.status_code < 500) or attempt == attempts - 1:
                    raise TeacherError(
                        f"teacher.url: cannot {what} at {self.url}: HTTP {error.status_code}: "
                        f"{self._mask(str(error))[:300]}"
                    ) from None
                wait_s = rate_limit_wait_s(error.response.headers)
            except openai.APIConnectionError as error:
                if attempt == attempts - 1:
                    cause = type(error.__cause__ or error).__name__
                    raise TeacherError(f"teacher.url: cannot {what} at {self.url} ({cause})") from None
                wait_s = None
            time.sleep(min(self.max_backoff_s, wait_s if wait_s is not None else self.backoff_s * 2**attempt))
        raise AssertionError("unreachable")

    def _job_of_file(self, file_id: str) -> Any:
        """The job created from `file_id`, if any (the account's jobs, newest first)."""
        jobs = self._call(lambda: self.client.batches.list(limit=100), "list the jobs")
        return next((job for job in jobs if job.input_file_id == file_id), None)

    def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self._call(lambda: self.client.files.content(file_id).text, f"read the file {file_id}")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # -- settling a job ------------------------------------------------------------------------------
    def _finish(self, session: Any, remote: str, items: list[tuple[int, int, str]]) -> int:
        """Poll the job `remote` ("file:<id>" or "batch:<id>") to its end and record every request's fate;
        return how many calls were given back."""
        store = session.store
        kind, remote_id = remote.split(":", 1)
        if kind == "file":
            job = self._job_of_file(remote_id)
            if job is None:
                self._give_back(session, remote, items, "no job was created from its file")
                return len(items)
            store.set_remote([batch for batch, *_ in items], f"batch:{job.id}")
            remote_id, remote = job.id, f"batch:{job.id}"
        started, max_wait_s = time.monotonic(), self.settings.batch_max_wait_s
        while True:
            job = self._call(lambda: self.client.batches.retrieve(remote_id), f"read the job {remote_id}")
            if job.status in FINAL:
                break
            if time.monotonic() - started > max_wait_s:
                session._fail(
                    TeacherError(
                        f"teacher.batch_max_wait_s={max_wait_s:g}: job {remote_id} is still {job.status}; "
                        f"its {len(items)} requests stay counted and the next run polls the same job"
                    )
                )
                return 0
            time.sleep(self.settings.batch_poll_s)
        by_request = {f"ckd-{item[0]}": item for item in items}
        settled: set[int] = set()
        given_back: list[str] = []
        if job.status == "failed":  # the file did not validate: nothing ran
            words = "; ".join(e.message or e.code or "" for e in (job.errors.data or [])) if job.errors else ""
            for batch, *_ in items:
                store.mark_refused(batch, f"job {remote_id} failed: {words}"[:500])
                given_back.append(words)
            settled = {batch for batch, *_ in items}
        for line in self._lines(job.output_file_id) if job.status != "failed" else []:
            item = by_request.get(str(line.get("custom_id")))
            if item is None or item[0] in settled:
                continue
            settled.add(item[0])
            response = line.get("response") or {}
            if response.get("status_code") == 200:
                self._record(session, item, response.get("body") or {})
            else:
                store.mark_refused(item[0], f"job {remote_id}: HTTP {response.get('status_code')}"[:500])
                given_back.append(f"HTTP {response.get('status_code')}")
        for line in self._lines(job.error_file_id) if job.status != "failed" else []:
            item = by_request.get(str(line.get("custom_id")))
            if item is None or item[0] in settled:
                continue
            settled.add(item[0])
            error = line.get("error") or {}
            code = error.get("code") or f"HTTP {(line.get('response') or {}).get('status_code')}"
            store.mark_refused(item[0], f"job {remote_id} {job.status}: {code}: {error.get('message', '')}"[:500])
            given_back.append(str(code))
        for batch, _, _ in items:
            if batch not in settled:  # in neither file: it may have run
                store.mark_lost(batch, f"job {remote_id} {job.status} without a result for this request")
        store.set_meta(f"{REMOTE_DONE}{remote}", job.status)
        log.info("job %s %s: %d requests, %d given back", remote_id, job.status, len(items), len(given_back))
        if given_back:
            session._fail(
                TeacherError(
                    f"job {remote_id} {job.status}: {len(given_back)} of its {len(items)} requests were not done "
                    f"({', '.join(sorted(set(given_back)))}); their calls were given back, the answers that "
                    "came are stored; run again to ask again in a new job"
                )
            )
        return len(given_back)

    def _record(self, session: Any, item: tuple[int, int, str], body: dict[str, Any]) -> None:
        """One answer from the output file: stored with its tokens, or quarantined with its words."""
        batch, sample_id, digest = item
        completion = self._openai.types.chat.ChatCompletion.model_validate(body)
        usage = {key: int(getattr(completion.usage, key, 0) or 0) for key in ("prompt_tokens", "completion_tokens")}
        session._add_usage(usage)
        try:
            scores, source = self._scores(completion, usage)
        except AnswerUnusable as unusable:
            session._quarantine(batch, str(unusable.raw), str(unusable), usage)
            return
        session.score_sources[source] = session.score_sources.get(source, 0) + 1
        row = scores.astype(np.float32)
        session._keep(batch, [sample_id], [digest], row[None], usage)
        session.answers[digest] = row
        session.bar.update(1)

    def _give_back(self, session: Any, remote: str, items: Any, why: str) -> None:
        for batch, *_ in items:
            session.store.mark_refused(batch, f"{remote}: {why}")
        session.store.set_meta(f"{REMOTE_DONE}{remote}", "never created")
        log.warning("%s: %s; its %d calls were given back", remote, why, len(items))
