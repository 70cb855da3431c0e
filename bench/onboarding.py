"""Site onboarding on the second hospital (issue 10): review 30 of its cases, calibrate
the site from them (the site's landmark offset, the risk threshold and the site's own
OOD reference), and route the other 20 on the site's own calibration.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mahtqa_bench_onboarding \
        python bench/onboarding.py --data ../shared/data/hamedan-dev --tolerated-risk 0.1

Recreates its own database; registers the bundled models with v2 active. Every
Hamedan radiograph goes in as a DICOM CR through the intake service with the README's
estimated spacing as ImagerPixelSpacing and a site header, and through the pipeline
(in-process, the worker's own function). The site is set to review-all; its 30
calibration cases are claimed and accepted through the review services with the two
annotators' mean as the final landmarks (as a radiologist would correct them); the
site is calibrated from them and the proposal accepted; review-all is switched off and
the other 20 cases are routed. Truth for scoring: the annotators' mean.

The headline split is the first 30 / last 20 (asserted: 0 unsafe releases and at least
25 % released). ``--rotations R`` repeats the whole onboarding R times, each at a site
of its own (another StationName), with the calibration window moved by 10 cases
(cases 10r .. 10r + 29, wrapping), so every case is scored twice over 5 rotations by a
calibration that never saw it. Then, at the headline site: ISBI radiographs (the
training device, at their own spacing) and crafted images that are no radiograph of
this site (inverted, heavily blurred, tile-shuffled, uniform noise) are sent as from
that site; the site's OOD reference should flag them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mahtqa_bench_onboarding")
SPACING = (0.136, 0.136)
SITE = {"InstitutionName": "Second hospital", "Manufacturer": "Planmeca",
        "ManufacturerModelName": "ProMax", "StationName": "CEPH"}  # fmt: skip
CRAFTED = ("inverted", "blurred", "tile_shuffled", "noise")


def setup() -> None:
    from bench._benchdb import database_fresh

    database_fresh()
    from django.core.management import call_command

    call_command("model_register_bundled", verbosity=0)


def crafted(pixels, kind: str, seed: int):
    """A radiograph of the site made into something the site's device never sends."""
    import cv2
    import numpy as np

    f = pixels.astype(np.float32)
    rng = np.random.default_rng(seed)
    if kind == "inverted":
        f = 255 - f
    elif kind == "blurred":
        f = cv2.GaussianBlur(f, (0, 0), 8)
    elif kind == "noise":
        f = rng.uniform(0, 255, f.shape).astype(np.float32)
    elif kind == "tile_shuffled":  # same intensities and edges, no anatomy
        t = 67
        hh, ww = (f.shape[0] // t) * t, (f.shape[1] // t) * t
        tiles = f[:hh, :ww].reshape(hh // t, t, ww // t, t).swapaxes(1, 2).reshape(-1, t, t)
        tiles = tiles[rng.permutation(len(tiles))]
        f[:hh, :ww] = tiles.reshape(hh // t, ww // t, t, t).swapaxes(1, 2).reshape(hh, ww)
    return np.clip(f, 0, 255)


class Run:
    """The services a hospital's cases go through (set up once per database)."""

    def __init__(self, tolerated_risk: float):
        from apps.accounts.choices import Role
        from apps.clinical.services import routing_policy_update
        from tests.factories import UserFactory

        self.pacs = UserFactory(role=Role.API_CLIENT)
        self.rad = UserFactory(role=Role.RADIOLOGIST)
        self.admin = UserFactory(role=Role.ADMIN)
        routing_policy_update(user=self.admin, tolerated_risk=tolerated_risk)

    def receive(self, pixels, *, header: dict, spacing=SPACING, pid: str = "H"):
        import numpy as np

        from apps.clinical.services.intake import study_receive
        from mahtqa.imaging.write import write_cr

        data = write_cr(pixels.astype(np.uint16) * 16, spacing_mm=spacing, patient_id=pid,
                        spacing_attribute="ImagerPixelSpacing", extra=header)  # fmt: skip
        return study_receive(user=self.pacs, data=data)[0]

    @staticmethod
    def infer(study):
        from apps.clinical.services import study_infer

        study_infer(study_id=study.pk)
        study.refresh_from_db()
        return study

    def send(self, pixels, **kw):
        return self.infer(self.receive(pixels, **kw))

    def routed(self, study) -> dict:
        from apps.clinical.models import Prediction

        pred = Prediction.objects.get(study=study)
        codes = [r["code"] for r in pred.routing["reasons"]]
        return {"status": study.status, "pred": pred, "codes": codes,
                "ood": pred.routing.get("ood") or {}, "global_ood": pred.ood_score}  # fmt: skip

    def onboard(self, calib, test, header: dict) -> dict:
        """Review ``calib`` at the site of ``header``, calibrate, accept, route ``test``."""
        import numpy as np

        from apps.clinical.models import Site
        from apps.clinical.services.review import review_decide, review_task_claim
        from apps.clinical.services.sites import (
            site_calibrate,
            site_calibration_decide,
            site_review_all_set,
        )
        from mahtqa.cephalometry.landmarks import ABBREVIATIONS
        from mahtqa.cephalometry.metrics import radial_errors_mm
        from mahtqa.engine.data import read_gray

        pid = lambda c: f"H-{c.case_id}"  # noqa: E731
        study = self.receive(read_gray(calib[0].image_path), header=header, pid=pid(calib[0]))
        site = Site.objects.get(pk=study.site_id)  # the site appears with its first study
        site_review_all_set(site=site, review_all=True, user=self.admin)
        studies = [self.infer(study)]
        for c in calib[1:]:
            studies.append(self.send(read_gray(c.image_path), header=header, pid=pid(c)))
        for s, case in zip(studies, calib, strict=True):
            if s.status != "in_review":
                continue
            review_task_claim(user=self.rad, study=s)
            final = [{"abbreviation": ab, "x": float(x), "y": float(y)}
                     for ab, (x, y) in zip(ABBREVIATIONS, case.mean, strict=True)]  # fmt: skip
            review_decide(user=self.rad, study=s, action="accept", landmarks_raw=final,
                          confirmed=True)  # fmt: skip
        proposal = site_calibrate(site=site, user=self.admin)
        site_calibration_decide(site=site, accept=True, user=self.admin)
        site_review_all_set(site=site, review_all=False, user=self.admin)
        rows = []
        for case in test:
            s = self.send(read_gray(case.image_path), header=header, pid=pid(case))
            r = self.routed(s)
            pts = np.array([[lm["x"], lm["y"]] for lm in r["pred"].landmarks])
            err = radial_errors_mm(pts, case.mean, SPACING)
            rows.append({**r, "case": case.case_id, "worst": float(err.max()),
                         "mre": float(err.mean()), "risk": r["pred"].case_risk})  # fmt: skip
        return {"site": site, "proposal": proposal, "rows": rows, "n_calib": len(studies),
                "all_in_review": all(s.status == "in_review" for s in studies)}  # fmt: skip


def summary(out: dict) -> dict:
    rows = out["rows"]
    released = [r for r in rows if r["status"] == "released"]
    return {
        "n": len(rows), "released": len(released),
        "unsafe": sum(r["worst"] > 4.0 for r in released),
        "site_ood": sum("out_of_distribution_site" in r["codes"] for r in rows),
        "global_ood_would_flag": sum(r["global_ood"] > 1.0 for r in rows),
        "over_threshold": sum("predicted_gross_error" in r["codes"] for r in rows),
        "mre": sum(r["mre"] for r in rows) / len(rows),
    }  # fmt: skip


def print_proposal(out: dict) -> None:
    p, ood = out["proposal"], out["proposal"]["ood"]
    print(f"site {out['site'].key}: {out['n_calib']} cases sent, all to review: "
          f"{out['all_in_review']}; proposal from {p['n']} reviewed cases "
          f"({p['unsafe_cases']} with a landmark > 4 mm): threshold {p['threshold']}, expected "
          f"release {p['release_rate']:.0%}, upper 95 % bound {p['unsafe_rate_upper']:.3f}; "
          f"site OOD reference from {ood['n']} cases: limit {ood.get('limit')}, "
          f"leave-one-out pass rate {ood.get('loo_pass_rate')} {ood.get('note', '')}")  # fmt: skip
    off = p.get("offset") or {}
    print(f"landmark offset: error on the reviewed cases {off.get('mre_before_mm')} -> "
          f"{off.get('mre_after_mm')} mm (each case by the offset fitted on the others), cases "
          f"with a landmark > 4 mm {off.get('unsafe_before')} -> {off.get('unsafe_after')}; "
          f"median shift per landmark {off.get('median_shift_mm')} {off.get('note', '')}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/hamedan-dev")
    ap.add_argument("--isbi", type=Path, default=ROOT.parent / "shared/data/isbi2015-subset")
    ap.add_argument("--tolerated-risk", type=float, default=0.1)
    ap.add_argument("--calibrate", type=int, default=30)
    ap.add_argument("--rotations", type=int, default=5)
    ap.add_argument("--probes", type=int, default=20, help="ISBI cases and crafted images")
    a = ap.parse_args()
    setup()
    from apps.models.selectors import model_version_active
    from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases
    from mahtqa.engine.data import read_gray

    run = Run(a.tolerated_risk)
    print(f"active model: {model_version_active()}; tolerated risk {a.tolerated_risk:.0%}")
    cases = load_isbi_cases(a.data)
    head = run.onboard(cases[: a.calibrate], cases[a.calibrate :], SITE)
    print_proposal(head)
    print("\n| case | status | worst mm | mean mm | case risk | site OOD | global OOD | reasons |"
          "\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in head["rows"]:
        print(f"| {r['case']} | {r['status']} | {r['worst']:.2f} | {r['mre']:.2f} | "
              f"{r['risk']:.3f} | {r['ood'].get('score', float('nan')):.2f} | "
              f"{r['global_ood']:.2f} | {', '.join(r['codes'])} |")  # fmt: skip
    s = summary(head)
    share = s["released"] / s["n"]
    print(f"\nthe other {s['n']} cases: MRE {s['mre']:.2f} mm; released {s['released']} "
          f"({share:.0%}, target >= 25 %: ratio {share / 0.25:.2f}); released with a landmark "
          f"> 4 mm: {s['unsafe']} (target 0); flagged by the site OOD reference "
          f"{s['site_ood']} (the training reference would flag {s['global_ood_would_flag']}); "
          f"over the site's risk threshold {s['over_threshold']}")  # fmt: skip

    print("\nprobes sent as from the headline site (after onboarding):")
    isbi = load_isbi_cases(a.isbi)[: a.probes]
    probes = [("ISBI (training device)", run.routed(run.send(read_gray(c.image_path), header=SITE,
               spacing=ISBI_SPACING_MM, pid=f"I-{c.case_id}"))) for c in isbi]  # fmt: skip
    rest = cases[a.calibrate :]
    for i in range(a.probes):
        kind, case = CRAFTED[i % len(CRAFTED)], rest[(i // len(CRAFTED)) % len(rest)]
        pixels = crafted(read_gray(case.image_path), kind, seed=i)
        probes.append((kind, run.routed(run.send(pixels, header=SITE, pid=f"X-{i}"))))
    print("| probe | sent | flagged by the site OOD reference | min site OOD score | released |"
          "\n|---|---|---|---|---|")  # fmt: skip
    for kind in dict.fromkeys(k for k, _ in probes):
        got = [r for k, r in probes if k == kind]
        flagged = sum("out_of_distribution_site" in r["codes"] for r in got)
        print(f"| {kind} | {len(got)} | {flagged} "
              f"| {min(r['ood'].get('score', float('nan')) for r in got):.2f} "
              f"| {sum(r['status'] == 'released' for r in got)} |")  # fmt: skip
    probes_ok = all("out_of_distribution_site" in r["codes"] for _, r in probes)

    pooled = [s]
    if a.rotations > 1:
        print("\ncross-fitted: the calibration window moved by 10 cases, each at a site of its own")
        print("| rotation | calibration cases | threshold | bound | OOD limit | released | unsafe "
              "| site OOD | over threshold |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
        print(f"| 0 | {cases[0].case_id}..{cases[a.calibrate - 1].case_id} | "
              f"{head['proposal']['threshold']} | {head['proposal']['unsafe_rate_upper']:.3f} | "
              f"{head['proposal']['ood'].get('limit')} | {s['released']}/{s['n']} | "
              f"{s['unsafe']} | {s['site_ood']} | {s['over_threshold']} |")  # fmt: skip
    for r in range(1, a.rotations):
        order = [cases[(10 * r + i) % len(cases)] for i in range(len(cases))]
        out = run.onboard(order[: a.calibrate], order[a.calibrate :],
                          {**SITE, "StationName": f"CEPH-R{r}"})  # fmt: skip
        t = summary(out)
        pooled.append(t)
        p = out["proposal"]
        print(f"| {r} | {order[0].case_id}..{order[a.calibrate - 1].case_id} | {p['threshold']} "
              f"| {p['unsafe_rate_upper']:.3f} | {p['ood'].get('limit')} | "
              f"{t['released']}/{t['n']} | {t['unsafe']} | {t['site_ood']} | "
              f"{t['over_threshold']} |")  # fmt: skip
    n = sum(t["n"] for t in pooled)
    rel = sum(t["released"] for t in pooled)
    print(f"pooled over {len(pooled)} rotation(s): released {rel}/{n} ({rel / n:.0%}), unsafe "
          f"releases {sum(t['unsafe'] for t in pooled)}, flagged by the site OOD reference "
          f"{sum(t['site_ood'] for t in pooled)}, over the site threshold "
          f"{sum(t['over_threshold'] for t in pooled)}")  # fmt: skip

    ok = not s["unsafe"] and share >= 0.25 and probes_ok
    print(f"\nprobes all flagged: {probes_ok}")
    print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
