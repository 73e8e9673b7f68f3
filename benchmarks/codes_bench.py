"""Token issue/verify and QR rendering per core, next to bare baselines measured in the same run.

    python -m benchmarks.codes_bench                 # about a minute
    python -m benchmarks.codes_bench --seconds 0.5   # quicker, noisier

One thread, no database. Each figure is the best of --repeats rounds of about --seconds each, counted
against the thread's CPU time (time.thread_time), so it is a rate per core that other processes on a
busy machine depress less than wall-clock rates (those are printed too). Figures:

- token: handlers.codes.issue (PyNaCl sign + Base45) and handlers.codes.verify (parse, Base45,
  signature, window), next to a bare PyNaCl verify, a bare `cryptography` Ed25519 verify, a bare
  PyNaCl sign, and the Base45 decode alone (ours, and the `base45` package's) with its share of a
  verification;
- images: handlers.render.png (QR, frame, colour in words, caption) and .svg, next to qrcode's
  default `qrcode.make(token).save(png)`; every PNG format is checked once with zxing-cpp.
"""
from __future__ import annotations

import argparse
import io
import itertools
import os
import platform
import time

import base45
import cryptography
import nacl
import qrcode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import SigningKey

from handlers import codes, render


def rate(fn, *, seconds: float, repeats: int) -> tuple[float, float]:
    """(calls per CPU second, calls per wall second), best of ``repeats`` rounds."""
    n = 1
    while True:  # calibrate: enough calls for a tenth of the round
        t = time.thread_time()
        for _ in range(n):
            fn()
        if time.thread_time() - t > seconds / 10:
            break
        n *= 2
    n = max(1, int(n * 10 * 0.8))
    best_cpu = best_wall = 0.0
    for _ in range(repeats):
        c, w = time.thread_time(), time.perf_counter()
        for _ in range(n):
            fn()
        best_cpu = max(best_cpu, n / max(time.thread_time() - c, 1e-9))
        best_wall = max(best_wall, n / max(time.perf_counter() - w, 1e-9))
    return best_cpu, best_wall


def cycle(items):
    """A function returning the next item on each call (different tokens/captions, no caching)."""
    it = itertools.cycle(items)  # never runs dry, however fast the machine
    return lambda: next(it)


def machine() -> dict:
    mem = next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import PIL
    return {"nproc": os.cpu_count(), "ram_gb": round(int(mem) / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "pynacl": nacl.__version__, "cryptography": cryptography.__version__,
            "qrcode": _version("qrcode"), "pillow": PIL.__version__}


def _version(dist: str) -> str:
    from importlib.metadata import version
    return version(dist)


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one round (default 1.5)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    kw = {"seconds": args.seconds, "repeats": args.repeats}
    print("machine:", ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"load average at start: {load_average()}", flush=True)

    key = SigningKey(os.urandom(32))
    keys = {1: key.verify_key}
    now = int(time.time())
    tokens = [codes.issue(key, 1, os.urandom(8), colour=c, kind="person", grade=None, not_before=now, lifetime=3600)[0]
              for c in ("green", "blue", "red") * 40]
    token = tokens[0]
    raw = codes.b45decode_token(token[len(codes.PREFIX):])
    payload, signature = raw[:codes.PAYLOAD_LEN], raw[codes.PAYLOAD_LEN:]
    body = token[len(codes.PREFIX):]
    crypto_key = Ed25519PrivateKey.generate()
    crypto_sig = crypto_key.sign(payload)
    crypto_pub = crypto_key.public_key()
    next_token = cycle(tokens)

    results: dict[str, tuple[float, float]] = {}

    def measure(name: str, fn) -> None:
        results[name] = rate(fn, **kw)
        cpu, wall = results[name]
        print(f"  {name:<52} {cpu:>10,.0f}/s per core  ({wall:,.0f}/s wall)", flush=True)

    print("\ntokens (one core)")
    measure("codes.verify (parse, Base45, PyNaCl, window)", lambda: codes.verify(next_token(), keys, now=now))
    measure("baseline: bare PyNaCl VerifyKey.verify", lambda: key.verify_key.verify(payload, signature))
    measure("baseline: bare cryptography Ed25519 verify", lambda: crypto_pub.verify(crypto_sig, payload))
    measure("Base45 decode of a token (codes.b45decode_token)", lambda: codes.b45decode_token(body))
    measure("Base45 decode, the base45 package", lambda: base45.b45decode(body))
    measure("codes.parse (prefix, Base45, fields; no signature)", lambda: codes.parse(token))
    measure("codes.issue (PyNaCl sign, Base45)", lambda: codes.issue(key, 1, b"12345678", colour="green",
                                                                     kind="person", grade=None, not_before=now,
                                                                     lifetime=30))
    measure("baseline: bare PyNaCl sign", lambda: key.sign(payload))

    print("\nimages (one core)")
    captions = cycle([f"张*明 2026-11-22 10:{m:02d}" for m in range(60)])
    for colour in ("green", "blue", "red"):  # a real decoder reads each kind of image
        png = render.png(token, colour=colour, caption="张*明 2026-11-22 10:32")
        _decodes(png, token)
    measure("render.png (QR, frame, colour in words, caption)",
            lambda: render.png(next_token(), colour="green", caption=captions()))
    measure("render.svg", lambda: render.svg(next_token(), colour="green", caption=captions()))
    measure("render.qr_modules (the symbol alone)", lambda: render.qr_modules(next_token()))

    def qrcode_default():
        out = io.BytesIO()
        qrcode.make(next_token()).save(out)
        return out

    measure("baseline: qrcode.make(token).save(png)", qrcode_default)
    print(f"load average at end: {load_average()}")

    v, nacl_v, crypto_v = (results[k][0] for k in ("codes.verify (parse, Base45, PyNaCl, window)",
                                                   "baseline: bare PyNaCl VerifyKey.verify",
                                                   "baseline: bare cryptography Ed25519 verify"))
    b45 = results["Base45 decode of a token (codes.b45decode_token)"][0]
    parse = results["codes.parse (prefix, Base45, fields; no signature)"][0]
    png_rate = results["render.png (QR, frame, colour in words, caption)"][0]
    qr_base = results["baseline: qrcode.make(token).save(png)"][0]
    per_verify = 1e6 / v
    print("\nsummary")
    print(f"  verify: {v:,.0f}/s per core = {per_verify:.0f} µs; of that the signature {1e6 / nacl_v:.0f} µs "
          f"({100 * v / nacl_v:.0f} % of the time), Base45 {1e6 / b45:.1f} µs ({100 * v / b45:.1f} %), "
          f"the rest of parsing {max(1e6 / parse - 1e6 / b45, 0):.1f} µs; "
          f"{v / nacl_v:.2f}× bare PyNaCl, {v / crypto_v:.2f}× bare cryptography; goal 10,000/s: "
          + ("met" if v >= 10_000 else f"missed by {10_000 - v:,.0f}/s ({100 * (1 - v / 10_000):.0f} %)"))
    print(f"  PNG: {png_rate:,.0f}/s per core, {png_rate / qr_base:.0f}× qrcode's default ({qr_base:,.0f}/s); "
          f"goal 500/s: {'met' if png_rate >= 500 else 'missed'}")


def _decodes(png: bytes, token: str) -> None:
    import zxingcpp
    from PIL import Image
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    if [b.text for b in found] != [token]:
        raise SystemExit("zxing-cpp did not read the rendered PNG back")


if __name__ == "__main__":
    main()
