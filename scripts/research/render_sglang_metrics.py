"""Render a /metrics body in the wire format SGLang 0.5.23 produces with --enable-metrics.
SGLang serves /metrics through prometheus_client's MultiProcessCollector
(sglang/srt/utils/common.py add_prometheus_middleware), so there are no *_created
series and the order is the collector's, not the definition order. (HELP text as
prometheus_client 0.26 renders it in multiprocess mode.)
Names, types, label names and buckets are copied from
sglang/srt/observability/metrics_collector.py of the sglang 0.5.23 wheel.
VALUES ARE INVENTED (same scenario as the vLLM file). Not from a running server."""
import os, sys, tempfile
d = tempfile.mkdtemp(); os.environ["PROMETHEUS_MULTIPROC_DIR"] = d
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
TL = dict(model_name="SmolLM2-135M-Instruct", engine_type="unified")          # tokenizer_metric_labels()
SL = dict(TL, tp_rank="0", pp_rank="0", moe_ep_rank="0")                      # scheduler labels
def sg(n, doc): return Gauge(n, doc, list(SL), multiprocess_mode="mostrecent").labels(**SL)
sg("sglang:num_running_reqs", "The number of running requests.").set(0)
sg("sglang:num_queue_reqs", "The number of requests in the waiting queue.").set(0)
sg("sglang:token_usage", "The token usage.").set(0.0)
sg("sglang:cache_hit_rate", "The prefix cache hit rate.").set(0.8)
sg("sglang:gen_throughput", "The generation throughput (token/s).").set(31.5)
qt = Histogram("sglang:queue_time_seconds", "Histogram of queueing time in seconds.", list(SL),
               buckets=[0.0, 0.001, 0.005, 0.010, 0.050, 0.100, 0.200, 0.500, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000])
qt.labels(**SL).observe(0.0009); qt.labels(**SL).observe(0.0007)
S = dict(TL, is_streaming="true")
Counter("sglang:prompt_tokens_total", "Number of prefill tokens processed.", list(S)).labels(**S).inc(40)
Counter("sglang:generation_tokens_total", "Number of generation tokens processed.", list(S)).labels(**S).inc(16)
Counter("sglang:num_requests_total", "Number of requests processed.", list(S)).labels(**S).inc(2)
Counter("sglang:cached_tokens_total", "Number of cached prompt tokens by source (device/host/storage).",
        list(TL) + ["cache_source"]).labels(**TL, cache_source="device").inc(16)
ttft = Histogram("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", list(S),
                 buckets=[0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400])
ttft.labels(**S).observe(0.21); ttft.labels(**S).observe(0.07)
e2e = Histogram("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", list(S),
                buckets=[0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400])
e2e.labels(**S).observe(0.45); e2e.labels(**S).observe(0.3)
R = CollectorRegistry(); multiprocess.MultiProcessCollector(R)
sys.stdout.write(generate_latest(R).decode())
