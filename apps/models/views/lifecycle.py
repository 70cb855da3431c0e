"""Pages of the model lifecycle: training runs (live curves, findings drawn on them,
several runs overlaid), evaluations and their paired comparison, the release gates,
and shadow mode. Engineers read; admins change gates, promote and run shadows."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.charts import bar_chart, line_chart
from apps.core.errors import DomainError
from apps.core.exceptions import domain_status
from apps.core.htmx import htmx_partial
from apps.core.permissions import perm_required
from apps.models import selectors
from apps.models.models import EvaluationRun, ModelVersion
from apps.models.services import evaluation as ev
from apps.models.services.shadow import model_version_promote, model_version_shadow_set

READ = ("accounts.register_model", "accounts.manage_models")
MANAGE = "accounts.manage_models"
CHART_GROUPS = (
    ("Loss", ("train_loss", "loss", "val_loss")),
    ("Learning rate", ("lr", "learning_rate")),
    ("Gradient norm", ("grad_norm",)),
    ("MRE (mm)", ("val_mre_mm", "mre_mm")),
)


def _run(pk: int):
    run = selectors.training_run_get(pk=pk)
    if run is None:
        raise Http404("No such run.")
    return run


def _bands(findings, group: str = "") -> list[tuple]:
    """The windows of the findings on one group's series (``run_diagnose`` tags a
    "<group>/" history's findings "[group] ")."""
    tag = f"[{group}] " if group else ""
    return [
        (f.start_step, f.end_step, f"{f.code}: {f.message}")
        for f in findings
        if (f.statistic.startswith(tag) if tag else not f.statistic.startswith("["))
    ]


def _charts(series: dict, findings) -> list[dict]:
    bands = _bands(findings)
    out, used = [], set()
    for title, names in CHART_GROUPS:
        chosen = {n: series[n] for n in names if n in series}
        used |= set(chosen)
        if chosen:
            log = title == "Loss" and all(
                v is None or v > 0 for vals in chosen.values() for _, v in vals
            )
            out.append(
                {
                    "title": title,
                    "svg": line_chart(
                        chosen, title=title, log_y=log, bands=bands if title == "Loss" else []
                    ),
                }
            )
    for name in sorted(set(series) - used)[:6]:
        group, _, rest = name.rpartition("/")
        extra = _bands(findings, group) if group and rest in ("train_loss", "loss") else []
        out.append(
            {"title": name, "svg": line_chart({name: series[name]}, title=name, bands=extra)}
        )
    return out


@perm_required(READ)
def run_list_view(request: HttpRequest) -> HttpResponse:
    runs = selectors.training_run_list()[:100]
    return render(request, "models/runs.html", {"runs": runs})


@perm_required(READ)
def run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    findings = list(run.findings.all())
    series = selectors.run_series_after(run=run)
    context = {"run": run, "findings": findings, "charts": _charts(series, findings)}
    return htmx_partial(request, "models/run.html", "models/partials/run_live.html", context)


@perm_required(READ)
def run_compare_view(request: HttpRequest) -> HttpResponse:
    picked = [*request.GET.get("runs", "").split(","), *request.GET.getlist("pick")]
    ids = list(dict.fromkeys(int(x) for x in picked if x.strip().isdigit()))[:6]
    metric = request.GET.get("metric", "train_loss")[:64]
    runs = [r for r in (selectors.training_run_get(pk=i) for i in ids) if r is not None]
    series = {}
    for r in runs:
        values = selectors.run_series_after(run=r, names=[metric]).get(metric, [])
        series[f"{r.pk} {r.name}"[:40]] = values
    chart = line_chart(series, title=f"{metric} of {len(runs)} runs", width=760, height=300)
    return render(
        request,
        "models/run_compare.html",
        {
            "runs": runs,
            "metric": metric,
            "chart": chart,
            "all_runs": selectors.training_run_list()[:50],
        },
    )


@perm_required(READ)
def evaluation_list_view(request: HttpRequest) -> HttpResponse:
    from apps.datasets.selectors import dataset_list

    context = {
        "evaluations": selectors.evaluation_list()[:100],
        "model_versions": selectors.model_version_list(),
        "datasets": dataset_list(),
        "splits": ev.SPLITS,
    }
    return render(request, "models/evaluations.html", context)


@require_POST
@perm_required(READ)
def evaluation_start_view(request: HttpRequest) -> HttpResponse:
    from apps.datasets.selectors import dataset_version_get

    mv = ModelVersion.objects.filter(pk=request.POST.get("model_version") or 0).first()
    dv = dataset_version_get(pk=int(request.POST.get("dataset_version") or 0))
    if mv is None or dv is None:
        messages.error(request, "Choose a model version and a dataset version.")
        return redirect("models:evaluations")
    try:
        run = ev.evaluation_start(
            model_version=mv,
            dataset_version=dv,
            split=request.POST.get("split", "test"),
            user=request.user,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("models:evaluations")
    return redirect("models:evaluation", pk=run.pk)


@perm_required(READ)
def evaluation_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = (
        EvaluationRun.objects.select_related("model_version", "dataset_version__dataset")
        .filter(pk=pk)
        .first()
    )
    if run is None:
        raise Http404("No such evaluation.")
    m = run.metrics or {}
    charts = {}
    if m:
        charts["landmarks"] = bar_chart(
            [(n, v["mre_mm"]) for n, v in m["per_landmark"].items()],
            unit=" mm",
            title="MRE by landmark",
        )
        charts["tradeoff"] = line_chart(
            {"unsafe % of released": [(p["release_pct"], p["unsafe_pct"]) for p in m["tradeoff"]]},
            title="Routing trade-off: release % (x) vs unsafe %",
        )
        if m.get("reliability"):
            charts["reliability"] = line_chart(
                {
                    "observed": [
                        (r["mean_confidence"], r["observed"])
                        for r in m["reliability"]
                        if r.get("n")
                    ],
                    "ideal": [(0, 0), (1, 1)],
                },
                title="Reliability (confidence vs share within 2 mm)",
            )
    others = (
        EvaluationRun.objects.filter(
            dataset_version=run.dataset_version, split=run.split, status="done"
        )
        .exclude(pk=run.pk)
        .select_related("model_version")
    )
    context = {"run": run, "m": m, "charts": charts, "others": others}
    return htmx_partial(
        request, "models/evaluation.html", "models/partials/evaluation_body.html", context
    )


@perm_required(READ)
def evaluation_compare_view(request: HttpRequest) -> HttpResponse:
    a = EvaluationRun.objects.filter(pk=request.GET.get("a") or 0, status="done").first()
    b = EvaluationRun.objects.filter(pk=request.GET.get("b") or 0, status="done").first()
    if a is None or b is None:
        raise Http404("Two finished evaluations are needed.")
    try:
        stats = ev.evaluation_compare(a=a, b=b)
    except DomainError as exc:
        return render(
            request,
            "models/evaluation_compare.html",
            {"a": a, "b": b, "error": exc},
            status=domain_status(exc),
        )
    return render(request, "models/evaluation_compare.html", {"a": a, "b": b, "stats": stats})


_GATE_FIELDS = ("max_mre_mm", "min_sdr2", "min_auroc", "max_unsafe_rate", "max_regression_mm")


@require_http_methods(["GET", "POST"])
@perm_required(MANAGE)
def release_gate_view(request: HttpRequest) -> HttpResponse:
    from apps.datasets.selectors import dataset_version_get

    gate = ev.release_gate_get()
    error = None
    if request.method == "POST":
        try:
            ev.release_gate_update(
                gate=gate,
                user=request.user,
                enabled=request.POST.get("enabled") == "on",
                reference=dataset_version_get(
                    pk=int(request.POST.get("reference_dataset_version") or 0)
                ),
                split=request.POST.get("reference_split", "test"),
                limits={f: request.POST.get(f, "") for f in _GATE_FIELDS},
            )
            messages.success(request, "Release gates saved.")
            return redirect("models:gates")
        except DomainError as exc:
            error = exc
    from apps.datasets.selectors import dataset_list

    checks = [
        (mv, ev.release_gate_check(model_version=mv)) for mv in selectors.model_version_list()[:10]
    ]
    return render(
        request,
        "models/gates.html",
        {
            "gate": gate,
            "error": error,
            "datasets": dataset_list(),
            "checks": checks,
            "splits": ev.SPLITS,
        },
        status=domain_status(error) if error else 200,
    )


@perm_required(READ)
def shadow_view(request: HttpRequest, pk: int) -> HttpResponse:
    from apps.clinical.services.shadow import shadow_comparison

    mv = ModelVersion.objects.filter(pk=pk).first()
    if mv is None:
        raise Http404("No such model version.")
    comparison = shadow_comparison(model_version=mv)
    chart = bar_chart(
        [(n, v["mean_mm"] or 0.0) for n, v in comparison["per_landmark"].items()],
        unit=" mm",
        title="Mean distance to the active model by landmark",
    )
    return render(
        request,
        "models/shadow.html",
        {
            "mv": mv,
            "c": comparison,
            "chart": chart,
            "gate": ev.release_gate_check(model_version=mv),
        },
    )


@require_POST
@perm_required(MANAGE)
def shadow_action_view(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    mv = ModelVersion.objects.filter(pk=pk).first()
    if mv is None or action not in ("start", "stop", "promote"):
        raise Http404("No such model version or action.")
    ip = request.META.get("REMOTE_ADDR")
    try:
        if action == "promote":
            model_version_promote(model_version=mv, user=request.user, ip=ip)
            messages.success(request, f"{mv} is now active.")
            return redirect("models:list")
        model_version_shadow_set(model_version=mv, on=action == "start", user=request.user, ip=ip)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("models:shadow", pk=pk)
