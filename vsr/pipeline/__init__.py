"""The streaming job: decode → batches → model chain → encode, each stage in its own thread."""

from vsr.pipeline.job import JobResult, Progress, UpscaleJob, UpscaleRequest

__all__ = ["JobResult", "Progress", "UpscaleJob", "UpscaleRequest"]
