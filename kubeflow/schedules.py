"""Recurring runs of the compiled pipeline on Kubeflow Pipelines v2: create, list, pause, resume,
delete, through ``kfp.Client`` (``/apis/v2beta1/recurringruns``).

A recurring run holds the compiled PipelineSpec and platform spec, the run parameters and a cron
trigger; KFP's scheduled-workflow controller starts a run at each tick. Each run reads what the
data folder holds then: with dated spans and ``data.spans`` set to the latest N
(``models/data/spans.py``), every tick trains on the newest window without a change here.

Two rules of KFP's that a user meets only in production:
- KFP parses the cron with robfig/cron's ``Parse``: six fields, **seconds first**, and a
  five-field expression is read as seconds, minutes, hours, day of month, month (day of week
  omitted). ``0 3 * * *`` then means "at minute 3 of every hour", not "03:00 daily". Here a
  five-field expression is the standard crontab one (minute first) and is sent with ``0``
  seconds in front; six fields are sent as given; ``@daily``-style descriptors and
  ``@every 24h`` as given (``kfp_cron``).
- Overlap and backfill: a schedule made here runs at most one run at a time
  (``max_concurrency=1``: a slow run delays the next tick instead of racing it to the same
  serving directory) and does not catch up on ticks missed while it was paused
  (``no_catchup``): a resumed schedule runs once, on the newest data.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

from kubeflow import submit

# robfig/cron's descriptors, which KFP accepts as they are.
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EVERY = re.compile(r"^@every\s+(\d+(\.\d+)?(h|m|s|ms|us|ns))+$")
# Each standard field's range: minute, hour, day of month, month, day of week.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_NAMES = re.compile(r"^[A-Za-z]{3}$")  # JAN..DEC, SUN..SAT


def kfp_cron(expression: str) -> str:
    """``expression`` in the form KFP's scheduler reads: a standard five-field crontab line
    (minute hour day-of-month month day-of-week) gets ``0`` seconds in front; a six-field one
    (seconds first, KFP's own) and a descriptor are returned as they are.

    Raises:
      ValueError: naming the field that cannot be read and what it may hold.
    """
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text in DESCRIPTORS or _EVERY.match(text):
            return text
        raise ValueError(f"schedule {expression!r}: unknown descriptor; use one of "
                         f"{', '.join(DESCRIPTORS)} or '@every 24h'")
    fields = text.split(" ")
    if len(fields) == 6:
        seconds, fields = fields[0], fields[1:]
        _check_field(expression, seconds, ("second", 0, 59))
    elif len(fields) == 5:
        seconds = "0"
    else:
        raise ValueError(f"schedule {expression!r}: expected 5 fields (minute hour day-of-month "
                         f"month day-of-week, e.g. '0 3 * * *' for 03:00 every day) or KFP's 6 "
                         f"(seconds first); got {len(fields)}")
    for value, field in zip(fields, _FIELDS):
        _check_field(expression, value, field)
    return " ".join([seconds] + fields)


def _check_field(expression: str, value: str, field) -> None:
    name, low, high = field
    for part in value.split(","):
        body, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            raise ValueError(f"schedule {expression!r}: the {name} field's step {step!r} must be a "
                             f"positive number")
        if body in ("*", "?") or _NAMES.match(body):
            continue
        bounds = body.split("-")
        if len(bounds) > 2 or not all(b.isdigit() or _NAMES.match(b) for b in bounds):
            raise ValueError(f"schedule {expression!r}: cannot read the {name} field {value!r}; "
                             f"it holds numbers {low}-{high}, ranges (a-b), lists (a,b), steps (*/n) "
                             f"or *")
        for bound in bounds:
            if bound.isdigit() and not low <= int(bound) <= high:
                raise ValueError(f"schedule {expression!r}: the {name} field's {bound} is out of "
                                 f"range {low}-{high}")


def create(package: str, host: str, cron: str, name: str, experiment: str = "tfx-recommender",
           params: Optional[Dict[str, object]] = None, pipeline_root: Optional[str] = None,
           token: Optional[str] = None, paused: bool = False) -> Dict[str, object]:
    """Creates a recurring run of ``package`` on ``cron`` (``kfp_cron``); returns its summary."""
    kfp_expression = kfp_cron(cron)
    kfp = submit.client(host, token)
    experiment_id = kfp.create_experiment(experiment).experiment_id  # found when it exists
    made = kfp.create_recurring_run(
        experiment_id=experiment_id, job_name=name, cron_expression=kfp_expression,
        max_concurrency=1, no_catchup=True, params=params or {}, pipeline_package_path=package,
        pipeline_root=pipeline_root, enabled=not paused)
    return summary(made)


def summary(recurring) -> Dict[str, object]:
    """A recurring run's id, name, schedule and state, as KFP reports them."""
    trigger = getattr(recurring, "trigger", None)
    cron = getattr(getattr(trigger, "cron_schedule", None), "cron", None)
    interval = getattr(getattr(trigger, "periodic_schedule", None), "interval_second", None)
    return {"id": recurring.recurring_run_id, "name": recurring.display_name,
            "schedule": cron if cron else (f"every {interval} s" if interval else None),
            "status": recurring.status or recurring.mode,
            "max_concurrency": recurring.max_concurrency, "no_catchup": recurring.no_catchup,
            "experiment_id": recurring.experiment_id}


def list_all(host: str, experiment: Optional[str] = None, token: Optional[str] = None
             ) -> List[Dict[str, object]]:
    """Every recurring run (of ``experiment`` when given), all pages."""
    kfp = submit.client(host, token)
    experiment_id = kfp.get_experiment(experiment_name=experiment).experiment_id if experiment else None
    out, page = [], ""
    while True:
        listed = kfp.list_recurring_runs(page_token=page, page_size=100, experiment_id=experiment_id)
        out += [summary(r) for r in (listed.recurring_runs or [])]
        page = listed.next_page_token
        if not page:
            return out


def pause(host: str, recurring_run_id: str, token: Optional[str] = None) -> None:
    submit.client(host, token).disable_recurring_run(recurring_run_id)


def resume(host: str, recurring_run_id: str, token: Optional[str] = None) -> None:
    submit.client(host, token).enable_recurring_run(recurring_run_id)


def delete(host: str, recurring_run_id: str, token: Optional[str] = None) -> None:
    submit.client(host, token).delete_recurring_run(recurring_run_id)
