"""What a run prints: one line per migration for a deploy log, or one JSON document."""
from __future__ import annotations

import json

from migration_safe.deploy.runner import Result, Step


def step_line(step: Step) -> str:
    item = step.pending
    if step.status == "would apply":
        return f"{step.status:<11} {item.phase.value:<11} {item.label}  (phase from {item.source})"
    retries = f"{step.retries} {'retry' if step.retries == 1 else 'retries'}"
    line = f"{step.status:<11} {item.phase.value:<11} {item.label}  {step.seconds:.2f} s  {retries}"
    return line + (f"\n  {step.error}" if step.error else "")


def summary_lines(result: Result, steps_shown: bool) -> list[str]:
    """The end of the text output; `steps_shown`: the step lines were printed as they happened."""
    options, plan = result.options, result.plan
    lines = [] if steps_shown else [step_line(step) for step in result.steps]
    if plan is not None:
        lines += [f"refused     {r.label}: {r.reason}" for r in plan.refused]
        if plan.later:
            lines.append("left for other phases: " + ", ".join(
                f"{p.label} ({p.phase.value})" for p in plan.later))
    head = f"migrate_phase {options.phase.value} on {options.database!r}: {result.outcome}"
    if result.outcome in ("done", "planned"):
        head += f", {len(result.steps)} migration{'' if len(result.steps) == 1 else 's'}"
    lines.append(head + (f"; {result.message}" if result.message else ""))
    return lines


def as_json(result: Result) -> str:
    options, plan = result.options, result.plan
    document = {
        "phase": options.phase.value,
        "database": options.database,
        "plan_only": options.plan_only,
        "outcome": result.outcome,
        "exit_code": result.exit_code,
        "message": result.message,
        "lock_timeout": options.lock_timeout,
        "statement_timeout": options.statement_timeout,
        "migrations": [{"migration": s.pending.label, "phase": s.pending.phase.value,
                        "phase_from": s.pending.source, "status": s.status,
                        "seconds": round(s.seconds, 3), "retries": s.retries, "error": s.error}
                       for s in result.steps],
        "refused": [{"migration": r.label, "reason": r.reason} for r in plan.refused] if plan else [],
        "later": [{"migration": p.label, "phase": p.phase.value} for p in plan.later] if plan else [],
    }
    return json.dumps(document, indent=2)
