"""The Faust app and its agents: score, window, judge, controller, sink, alerter, DLQ."""
