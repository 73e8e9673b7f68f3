"""/metrics sums every worker's counters when prometheus-client's multiprocess mode is on (gunicorn)."""
import subprocess
import sys
import textwrap


def test_metrics_aggregate_across_processes(tmp_path):
    # Multiprocess mode must be chosen before prometheus_client is imported: run in fresh interpreters.
    env_dir = tmp_path / "prom"
    env_dir.mkdir()
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(env_dir)!r}
        from webhooks.observability import REQUESTS, _registry
        from prometheus_client import generate_latest
        REQUESTS.labels("/x", "GET", "200").inc()
        if sys.argv[1] == "report":
            sys.stdout.write(generate_latest(_registry()).decode())
    """)
    for _ in range(2):  # two "workers" count one request each
        subprocess.run([sys.executable, "-c", script, "count"], check=True)
    out = subprocess.run([sys.executable, "-c", script, "report"], check=True, capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("xinma_http_requests_total{") and '"/x"' in x)
    assert float(line.rsplit(" ", 1)[1]) == 3.0
