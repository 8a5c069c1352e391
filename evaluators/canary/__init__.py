"""The canary judge, read like Kayenta's: arms → classify → score → judge, on time-matched, anytime-valid evidence.

- `arms`: what the judge reads of each arm (`ArmStats` over the metrics' one definition, `ArmData` per stratum);
- `evidence`: one rollout's strata and running tests; `stats`: the stratified e-processes and the sample-ratio test;
- `config`: the policy (metrics, tolerated and forbidden changes, risk budget); `classify`, `score`, `judge`;
- `guarantees`: the smallest regression each metric is sure to stop, per step and traffic level;
- `kayenta`: a Kayenta-style judge (Mann–Whitney on 1-minute points over fixed intervals), to compare against.

Pure: no Kafka, no ClickHouse, no clock. The judge agent (streams/judging.py) and the offline API
(streams/offline.py) drive it.
"""

from .arms import RATES, SKETCHES, ArmData, ArmStats, Count, Hist
from .config import JudgeConfig, MetricSpec, QuantileMargin, default_metrics, latency_margins
from .evidence import Evidence, Outcome
from .judge import JUDGE_NAME, Judge

__all__ = [
    "JUDGE_NAME",
    "RATES",
    "SKETCHES",
    "ArmData",
    "ArmStats",
    "Count",
    "Evidence",
    "Hist",
    "Judge",
    "JudgeConfig",
    "MetricSpec",
    "Outcome",
    "QuantileMargin",
    "default_metrics",
    "latency_margins",
]
