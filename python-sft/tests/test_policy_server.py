"""The policy server against the shipped checkpoint, over plain HTTP (the openai package is not installed); the
shared serving layer's limits (prm_raft.serving) under abuse, over raw sockets."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

MODEL = Path(os.environ.get("PRM_RAFT_TEST_POLICY") or Path(__file__).resolve().parents[2] / "models" / "tinymath-policy")
NAME = MODEL.name  # the server's default served name is the directory's basename
PROMPT = "Question: Ann has 12 apples. She buys 7 more. She gives 5 to Bob. How many apples does Ann have now?\nAnswer:\n"
PROMPT2 = "Question: Tom buys 3 pens at $4 each. He pays with a $20 bill. How much change does Tom get?\nAnswer:\n"
STOP = ["\n\n", "Question:"]
MAX_N, MAX_PROMPTS, MAX_BODY, RECEIVE_TIMEOUT = 8, 4, 100_000, 3


def require_shipped(model: Path) -> None:
    """A shipped model (committed under models/) that is missing is a broken checkout, never a reason to skip."""
    missing = [f for f in ("config.json", "model.safetensors") if not (model / f).is_file()]
    if missing:
        pytest.fail(f"shipped model {model} lacks {', '.join(missing)}: models/ is committed in git, restore it (git checkout -- {model})", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base: str, method: str, path: str, body=None, raw: bytes | None = None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            payload = r.read()
            return r.status, (json.loads(payload) if payload else None)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server():
    require_shipped(MODEL)
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"policy_server_test_{port}.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prm_raft.policy_server", "--model", str(MODEL), "--port", str(port), "--threads", "2",
         "--max-n", str(MAX_N), "--max-prompts", str(MAX_PROMPTS), "--max-body-bytes", str(MAX_BODY),
         "--receive-timeout", str(RECEIVE_TIMEOUT)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not become healthy in 90 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
        assert "POST /v1/completions 200" in text  # one log line per request
        assert "Traceback" not in text  # not for a client that went away, nor for any request of this module


def complete(base, **kw):
    body = {"model": NAME, "prompt": PROMPT, "max_tokens": 64, "stop": STOP, **kw}
    return request(base, "POST", "/v1/completions", body)


def test_models(server):
    status, body = request(server, "GET", "/v1/models")
    assert status == 200
    assert body["object"] == "list"
    (m,) = body["data"]
    assert m["id"] == NAME and m["object"] == "model" and m["owned_by"] == "prm-raft"
    assert isinstance(m["created"], int)
    assert m["max_model_len"] == 384
    assert "@sha256:" in m["root"]


def test_greedy_is_deterministic_and_well_formed(server):
    s1, b1 = complete(server, temperature=0)
    s2, b2 = complete(server, temperature=0)
    assert s1 == s2 == 200
    assert b1["object"] == "text_completion" and b1["id"].startswith("cmpl-") and b1["model"] == NAME
    assert isinstance(b1["created"], int)
    (c,) = b1["choices"]
    assert set(c) == {"index", "text", "logprobs", "finish_reason", "stop_reason"}
    assert c["index"] == 0 and c["logprobs"] is None
    assert c["text"] == b2["choices"][0]["text"]
    assert "####" in c["text"]  # the policy writes a GSM8K-style answer line
    assert c["finish_reason"] == "stop"
    u = b1["usage"]
    assert u["prompt_tokens"] == len(PROMPT) + 1  # one token per character, plus <bos>
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert 0 < u["completion_tokens"] <= 64


def test_n_samples(server):
    status, body = complete(server, n=3, temperature=1.0, seed=1)
    assert status == 200
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert all(isinstance(c["text"], str) for c in body["choices"])


def test_prompt_list_times_n(server):
    status, body = complete(server, prompt=[PROMPT, PROMPT2], n=2, temperature=0.8, seed=7)
    assert status == 200
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert body["usage"]["prompt_tokens"] == len(PROMPT) + 1 + len(PROMPT2) + 1
    # greedy rows must equal the single-prompt greedy result (left padding does not change the output)
    _, g_list = complete(server, prompt=[PROMPT2, PROMPT], temperature=0)
    _, g1 = complete(server, prompt=PROMPT, temperature=0)
    _, g2 = complete(server, prompt=PROMPT2, temperature=0)
    assert g_list["choices"][0]["text"] == g2["choices"][0]["text"]
    assert g_list["choices"][1]["text"] == g1["choices"][0]["text"]


def test_seed_reproducible(server):
    kw = dict(prompt=[PROMPT, PROMPT2], n=3, temperature=1.0, top_p=0.95, seed=1234)
    _, a = complete(server, **kw)
    _, b = complete(server, **kw)
    assert [c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]]
    _, c = complete(server, **{**kw, "seed": 99, "temperature": 1.5})
    assert [x["text"] for x in c["choices"]] != [x["text"] for x in a["choices"]]


def test_stop_strings_are_cut(server):
    _, full = complete(server, temperature=0, stop=[])
    text = full["choices"][0]["text"]
    assert "\n" in text
    status, body = complete(server, temperature=0, stop="\n")
    assert status == 200
    (c,) = body["choices"]
    assert c["text"] == text.split("\n")[0]
    assert c["finish_reason"] == "stop" and c["stop_reason"] == "\n"
    # a multi-character stop string
    stop = " = "
    _, body = complete(server, temperature=0, stop=["zzz", stop])
    (c,) = body["choices"]
    assert c["text"] == text.split(stop)[0] and c["stop_reason"] == stop and stop not in c["text"]


def test_max_tokens_gives_length(server):
    status, body = complete(server, temperature=0, max_tokens=3)
    assert status == 200
    (c,) = body["choices"]
    assert c["finish_reason"] == "length" and c["stop_reason"] is None
    assert len(c["text"]) == 3 and body["usage"]["completion_tokens"] == 3


def test_max_tokens_over_context_is_400(server):
    status, body = complete(server, max_tokens=1000)
    assert status == 400
    assert body["error"]["type"] == "BadRequestError" and body["error"]["code"] == 400
    assert "maximum context length is 384" in body["error"]["message"]


def test_stream_is_400(server):
    status, body = complete(server, stream=True)
    assert status == 400 and "stream" in body["error"]["message"]


def test_unknown_model(server):
    status, body = complete(server, model="nope")
    assert status in (400, 404)
    assert "nope" in body["error"]["message"] and body["error"]["code"] == status


@pytest.mark.parametrize(
    "patch,word",
    [
        ({"n": 0}, "n"),
        ({"n": "2"}, "n"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"stop": 5}, "stop"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"seed": "x"}, "seed"),
        ({"top_p": 0}, "top_p"),
    ],
)
def test_bad_requests(server, patch, word):
    status, body = complete(server, **patch)
    assert status == 400, body
    assert word in body["error"]["message"]
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_bad_json_and_unknown_path(server):
    status, body = request(server, "POST", "/v1/completions", raw=b"{not json")
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = request(server, "GET", "/v1/nothing")
    assert status == 404 and body["error"]["code"] == 404 and body["error"]["type"] == "NotFoundError"


def test_root_changes_with_the_weights(tmp_path):
    from prm_raft.policy_server import weights_root

    assert weights_root(str(tmp_path)) == str(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"first")
    first = weights_root(str(tmp_path))
    assert first.startswith(f"{tmp_path}@sha256:")
    (tmp_path / "model.safetensors").write_bytes(b"second")
    assert weights_root(str(tmp_path)) not in (first, str(tmp_path))


def test_null_fields_mean_their_defaults(server):
    status, body = complete(server, temperature=0, stop=None, n=None, seed=None)  # the openai client sends stop: null
    assert status == 200 and len(body["choices"]) == 1


def test_caps_on_n_and_prompts_name_the_flag(server):
    status, body = complete(server, n=MAX_N + 1)
    assert status == 400 and body["error"]["param"] == "n"
    assert f"at most {MAX_N}" in body["error"]["message"] and "--max-n" in body["error"]["message"]
    status, body = complete(server, prompt=[PROMPT] * (MAX_PROMPTS + 1))
    assert status == 400 and body["error"]["param"] == "prompt"
    assert f"at most {MAX_PROMPTS}" in body["error"]["message"] and "--max-prompts" in body["error"]["message"]


# --------------------------------------------------------------------------------------------------
# The serving layer under abuse (issue 12 item 4), over raw sockets
# --------------------------------------------------------------------------------------------------


def raw_exchange(base: str, data: bytes, timeout: float = 60) -> bytes:
    """Send `data` as is and read until the server closes the connection (a bounded wait)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def parse_response(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_an_announced_huge_body_is_413_before_it_is_read(server):
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{"
    status, body = parse_response(raw_exchange(server, head))  # the server answers and closes without the body
    assert status == 413 and body["error"]["code"] == 413
    assert f"limit of {MAX_BODY} bytes" in body["error"]["message"] and "--max-body-bytes" in body["error"]["message"]


def test_a_chunked_body_over_the_limit_is_413(server):
    # just over the limit and no end: the server must answer from what it counted (and has read every byte sent)
    chunk = b"x" * (MAX_BODY // 2 + 1)
    data = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2))
    status, body = parse_response(raw_exchange(server, data))
    assert status == 413 and "--max-body-bytes" in body["error"]["message"]


def test_a_malformed_content_length_is_400_in_the_error_format(server):
    status, body = parse_response(raw_exchange(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"))
    assert status == 400 and body["error"]["type"] == "BadRequestError" and "Content-Length" in body["error"]["message"]


@pytest.mark.parametrize(
    "half_sent",
    [b"GET /health HTTP/1.1\r\nHo", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"],
    ids=["headers", "body"],
)
def test_a_half_sent_request_is_dropped_after_the_receive_timeout(server, half_sent):
    assert raw_exchange(server, half_sent, timeout=RECEIVE_TIMEOUT + 60) == b""  # closed by the server, no answer


def test_a_thousand_concurrent_health_checks_are_all_answered(server):
    host, port = server.removeprefix("http://").split(":")

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data = await reader.read()
        writer.close()
        return data.split(b" ", 2)[1]

    async def all_of_them() -> list[bytes]:
        return await asyncio.gather(*(one() for _ in range(1000)))

    assert asyncio.run(asyncio.wait_for(all_of_them(), 60)) == [b"200"] * 1000


def test_a_client_that_goes_away_mid_generation_leaves_no_traceback(server):
    body = json.dumps({"model": NAME, "prompt": [PROMPT] * MAX_PROMPTS, "n": MAX_N, "max_tokens": 64, "temperature": 1}).encode()
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    # the engine's lock serializes requests: this one is answered once the abandoned generation is done
    assert complete(server, temperature=0, max_tokens=4)[0] == 200  # (the fixture checks the log has no traceback)
