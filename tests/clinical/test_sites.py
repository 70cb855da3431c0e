"""Sites (issue 10, site onboarding): keyed de-identified site keys from the header,
review-all, per-site calibration proposals and their use by routing for that site only."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from apps.accounts.choices import Role
from apps.clinical.choices import AuditAction
from apps.clinical.models import AuditEvent, Review, Site
from apps.clinical.routing import PolicyView, route
from apps.clinical.services.intake import study_receive
from apps.clinical.services.pipeline import prediction_decide
from apps.clinical.services.policy import (
    risk_gate,
    routing_policy_current,
    routing_policy_update,
    site_offset_apply,
    site_reviews_all,
)
from apps.clinical.services.sites import (
    site_cache_clear,
    site_calibrate,
    site_calibration_decide,
    site_list,
    site_review_all_set,
)
from apps.core.errors import Conflict
from apps.models.services import model_version_activate
from mahtqa.engine.site_offset import LandmarkOffset
from mahtqa.engine.types import EnginePrediction, LandmarkResult
from mahtqa.imaging.site import DEFAULT_SITE, SiteFields, site_key
from mahtqa.imaging.write import write_cr
from tests.clinical.review_factories import make_study
from tests.factories import ModelVersionFactory, PredictionFactory, landmark_rows

pytestmark = pytest.mark.django_db
HOSPITAL = {"InstitutionName": "Hamedan University Hospital", "Manufacturer": "Planmeca",
            "ManufacturerModelName": "ProMax", "StationName": "CEPH-2"}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_site_cache():
    site_cache_clear()
    yield
    site_cache_clear()


def _dicom(seed=0, **header):
    pixels = (np.random.default_rng(seed).random((80, 64)) * 4000).astype(np.uint16)
    return write_cr(pixels, extra=header or None)


def test_site_keys_are_keyed_stable_and_reveal_nothing():
    fields = SiteFields("Hamedan University Hospital", "Planmeca", "ProMax", "CEPH-2")
    key = site_key(fields, key=b"secret-1")
    assert key.startswith("site-")
    assert len(key) == 21
    assert key == site_key(SiteFields(" hamedan  university HOSPITAL", "planmeca", "PROMAX",
                                      "ceph-2"), key=b"secret-1")  # fmt: skip
    assert key != site_key(fields, key=b"secret-2")  # keyed: not a plain hash
    assert key != site_key(SiteFields("Hamedan University Hospital", "Planmeca", "ProMax",
                                      "CEPH-3"), key=b"secret-1")  # fmt: skip
    assert "hamedan" not in key.lower()
    assert site_key(SiteFields(), key=b"secret-1") == DEFAULT_SITE
    assert fields.device == "Planmeca ProMax"


def test_intake_files_each_study_under_its_site(api_client_user):
    a, _ = study_receive(user=api_client_user, data=_dicom(1, **HOSPITAL))
    b, _ = study_receive(user=api_client_user, data=_dicom(2, **HOSPITAL))
    elsewhere = {**HOSPITAL, "StationName": "CEPH-9"}
    other, _ = study_receive(user=api_client_user, data=_dicom(3, **elsewhere))
    plain, _ = study_receive(user=api_client_user, data=_dicom(4, Manufacturer=""))
    assert a.site_id == b.site_id != other.site_id
    assert Site.objects.get(pk=plain.site_id).key == DEFAULT_SITE
    site = Site.objects.get(pk=a.site_id)
    assert site.device == "Planmeca ProMax"
    stored = json.dumps(list(Site.objects.values()), default=str)
    assert "Hamedan" not in stored
    assert "CEPH-2" not in stored


POLICY = PolicyView(1, 0.5, {}, 1.0, "exceptions_only", ("high",))
LMS = [{"abbreviation": a, "confidence": 0.99} for a in ("S", "N", "A", "B", "Pog", "Me", "Gn")]


def test_a_review_all_site_sends_every_case_to_review(admin_user):
    site = Site.objects.create(key="site-aaaa", device="X")
    policy = routing_policy_current()
    assert not site_reviews_all(policy=policy, site=site)
    site_review_all_set(site=site, review_all=True, user=admin_user)
    assert site_reviews_all(policy=policy, site=site)
    d = route(landmarks=LMS, findings=[], ood_score=0.1, policy=POLICY, site_review_all=True)
    assert d.destination == "review"
    assert [r["code"] for r in d.reasons] == ["site_review_all"]
    assert AuditEvent.objects.get(action=AuditAction.SITE_REVIEW_ALL).target_id == "site-aaaa"
    # the global switch: every site not yet onboarded
    fresh = Site.objects.create(key="site-bbbb", device="Y")
    strict = routing_policy_update(user=None, new_sites_review_all=True)
    assert site_reviews_all(policy=strict, site=fresh)
    fresh.policy = {"threshold": 0.1}
    assert not site_reviews_all(policy=strict, site=fresh)


CERT = {"threshold": 0.05, "n": 100, "released": 60, "unsafe_released": 0, "release_rate": 0.6,
        "unsafe_rate_upper": 0.03}  # fmt: skip


def _model():
    mv = ModelVersionFactory(manifest={"sha256": "f" * 64,
                                       "risk_control": {"by_alpha": {"0.05": CERT}}})  # fmt: skip
    mv.sha256 = "f" * 64
    mv.save()
    return mv


def _reviewed(site, mv, *, risk: float, off_mm: float, reviewer):
    study = make_study(site=site, spacing_row_mm=0.1, spacing_col_mm=0.1, status="reviewed")
    before = landmark_rows(0.9)
    pred = PredictionFactory(study=study, model_version=mv, landmarks=before, case_risk=risk)
    after = [dict(lm) for lm in before]
    after[2]["x"] += off_mm / 0.1  # A moved by the reviewer
    Review.objects.create(study=study, prediction=pred, reviewer=reviewer, outcome="corrected",
                          landmarks_before=before, landmarks_after=after)  # fmt: skip


def test_site_calibration_proposes_accepts_and_routes_that_site_only(make_user, admin_user):
    mv = _model()
    model_version_activate(model_version=mv, user=admin_user)
    site, other = Site.objects.create(key="site-hhhh"), Site.objects.create(key="site-oooo")
    rad = make_user(Role.RADIOLOGIST)
    routing_policy_update(user=None, tolerated_risk=0.1)
    for i in range(29):
        _reviewed(site, mv, risk=0.01 + i / 1000, off_mm=0.5, reviewer=rad)
    with pytest.raises(Conflict) as exc:
        site_calibrate(site=site, user=admin_user)
    assert exc.value.code == "too_few_reviewed"
    for risk, off in ((0.02, 0.5), (0.3, 6.0), (0.4, 7.0)):  # two gross errors, high risk
        _reviewed(site, mv, risk=risk, off_mm=off, reviewer=rad)
    proposal = site_calibrate(site=site, user=admin_user)
    assert proposal["n"] == 32
    assert proposal["unsafe_cases"] == 2
    assert proposal["unsafe_released"] == 0
    assert proposal["threshold"] == pytest.approx(0.038)  # the largest safe risk below 0.3
    assert proposal["best_certifiable_risk"] == pytest.approx(1 - 0.05 ** (1 / 32), abs=1e-4)
    site_calibration_decide(site=site, accept=True, user=admin_user)
    site.refresh_from_db()
    assert site.policy["threshold"] == pytest.approx(0.038)
    assert site.onboarded_at is not None
    policy = routing_policy_current()
    own = risk_gate(policy=policy, manifest=mv.manifest, case_risk=0.04, site=site)
    assert own.threshold == pytest.approx(0.038)
    assert own.n_calibration == 32
    assert own.source == "site-hhhh"
    assert risk_gate(policy=policy, manifest=mv.manifest, case_risk=0.04, site=other) is None
    routing_policy_update(user=None, tolerated_risk=0.05)
    glob = risk_gate(policy=routing_policy_current(), manifest=mv.manifest, case_risk=0.04,
                     site=other)  # fmt: skip
    assert glob.threshold == 0.05  # other sites keep the global certificate
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditAction.SITE_CALIBRATE, AuditAction.SITE_ACCEPT} <= actions


def test_the_cli_lists_sites_and_accepts_as_an_admin(make_user, admin_user):
    mv = _model()
    model_version_activate(model_version=mv, user=admin_user)
    site = Site.objects.create(key="site-cli0", device="Planmeca ProMax")
    rad = make_user(Role.RADIOLOGIST)
    routing_policy_update(user=None, tolerated_risk=0.1)
    for i in range(30):
        _reviewed(site, mv, risk=i / 100, off_mm=0.3, reviewer=rad)
    out = io.StringIO()
    call_command("site_list", "--json", stdout=out)
    row = next(r for r in json.loads(out.getvalue()) if r["site"] == "site-cli0")
    assert row["reviewed"] == 30
    assert row["policy"] == "global calibration"
    with pytest.raises(CommandError, match="needs --by"):
        call_command("site_calibrate", "site-cli0", "--accept")
    with pytest.raises(CommandError, match="not an admin"):
        call_command("site_calibrate", "site-cli0", "--accept", "--by", rad.username)
    out = io.StringIO()
    call_command("site_calibrate", "site-cli0", "--accept", "--by", admin_user.username,
                 "--json", stdout=out)  # fmt: skip
    result = json.loads(out.getvalue())
    assert result["accepted"] is True
    assert result["release_rate"] == 1.0  # no unsafe case among 30: every one released
    assert result["unsafe_rate_upper"] == pytest.approx(1 - 0.05 ** (1 / 30), abs=1e-4)
    assert Site.objects.get(key="site-cli0").policy["accepted_by"] == admin_user.username
    assert result["offset"]["unsafe_before"] == 0
    assert result["landmark_offset"]["n"] == 30
    out = io.StringIO()
    call_command("site_calibrate", "site-cli0", stdout=out)  # the plain text, as an operator reads
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("site-cli0: threshold 0.29, expected release 100% of 30")
    assert lines[1] == (
        f"landmark offset: error on its reviewed cases {result['offset']['mre_before_mm']:.2f} -> "
        f"{result['offset']['mre_after_mm']:.2f} mm, cases with a landmark > 4 mm 0 -> 0 "
        "(leave-one-out)"
    )


def test_site_actions_refuse_unknown_sites_actions_and_missing_proposals(admin_client_):
    from django.urls import reverse

    Site.objects.create(key="site-page", device="X")
    url = lambda key, action: reverse("clinical:site_action", kwargs={"key": key, "action": action})  # noqa: E731
    assert admin_client_.post(url("site-nope", "accept")).status_code == 404
    assert admin_client_.post(url("site-page", "explode")).status_code == 404
    r = admin_client_.post(url("site-page", "accept"))  # nothing proposed: said, nothing stored
    assert r.status_code == 302
    assert "has no calibration proposal" in admin_client_.get(r["Location"]).content.decode()
    assert Site.objects.get(key="site-page").policy is None
    r = admin_client_.post(url("site-page", "calibrate"))  # no active model / too few cases
    assert r.status_code == 302
    assert Site.objects.get(key="site-page").proposal is None


def _points(rows: list[dict]) -> np.ndarray:
    return np.array([[lm["x"], lm["y"]] for lm in rows])


def _calibrating(key: str, make_user, admin_user):
    """The active model, a new site and a radiologist, at a 10 % tolerated risk."""
    mv = _model()
    model_version_activate(model_version=mv, user=admin_user)
    routing_policy_update(user=None, tolerated_risk=0.1)
    return mv, Site.objects.create(key=key), make_user(Role.RADIOLOGIST)


def test_the_proposal_carries_the_sites_landmark_offset_and_what_it_does(make_user, admin_user):
    mv, site, rad = _calibrating("site-offs", make_user, admin_user)
    for i in range(30):  # this site's reviewers place A 0.5 mm further right than the engine
        _reviewed(site, mv, risk=0.01 + i / 1000, off_mm=0.5, reviewer=rad)
    for risk, off in ((0.3, 6.0), (0.4, 7.0)):
        _reviewed(site, mv, risk=risk, off_mm=off, reviewer=rad)
    proposal = site_calibrate(site=site, user=admin_user)
    offset = LandmarkOffset.from_dict(proposal["landmark_offset"])
    assert offset.n == 32
    before = _points(landmark_rows(0.9))
    moved = offset.apply(before)
    # the median of 32 cases (A +5 px), shrunk by 32 / (32 + 5); nothing else moves
    assert moved[2] - before[2] == pytest.approx([5.0 * 32 / 37, 0.0], abs=1e-4)
    assert np.delete(moved, 2, axis=0) == pytest.approx(np.delete(before, 2, axis=0), abs=1e-9)
    figures = proposal["offset"]
    assert figures["unsafe_before"] == 2
    assert figures["unsafe_after"] == 2  # 6 and 7 mm stay gross after a 0.43 mm shift
    assert figures["mre_before_mm"] == pytest.approx((30 * 0.5 + 6 + 7) / 32 / 7, abs=1e-3)
    assert figures["mre_after_mm"] < figures["mre_before_mm"]
    assert figures["median_shift_mm"]["A"] == pytest.approx(0.5 * 32 / 37, abs=0.01)
    assert figures["median_shift_mm"]["S"] == 0.0
    site_calibration_decide(site=site, accept=True, user=admin_user)
    assert Site.objects.get(pk=site.pk).policy["landmark_offset"] == proposal["landmark_offset"]
    event = AuditEvent.objects.filter(action=AuditAction.SITE_ACCEPT).latest("id")
    assert event.details["offset"]["unsafe_after"] == 2


def _engine_result(mv_points: np.ndarray, risk: float = 0.02) -> EnginePrediction:
    lms = [LandmarkResult(abbreviation=r["abbreviation"], name=r["name"], x=float(x), y=float(y),
                          confidence=0.9)
           for r, (x, y) in zip(landmark_rows(0.9), mv_points, strict=True)]  # fmt: skip
    return EnginePrediction(landmarks=lms, ood_score=0.2, case_risk=risk,
                            risk_details={"p_over_4mm": [0.01] * 7})  # fmt: skip


def test_an_accepted_offset_moves_that_sites_points_for_that_model_only():
    mv = _model()
    shift = [[0.0, 0.0]] * 7
    shift[2] = [0.01, 0.0]  # A: 1 % of S-N along S->N
    site = Site.objects.create(key="site-move", policy={
        "model_sha256": mv.sha256, "threshold": 0.1, "n": 30,
        "landmark_offset": {"offsets": shift, "n": 30, "prior_cases": 5}})  # fmt: skip
    other = Site.objects.create(key="site-stay", policy={"model_sha256": mv.sha256, "n": 30})
    engine = _points(landmark_rows(0.9))
    raw = _engine_result(engine)
    out = site_offset_apply(result=raw, manifest=mv.manifest, site=site)
    sn = np.hypot(*(engine[1] - engine[0]))
    along = (engine[1] - engine[0]) / sn
    assert _points([{"x": lm.x, "y": lm.y} for lm in out.landmarks])[2] == pytest.approx(
        engine[2] + 0.01 * sn * along
    )
    assert out.risk_details["site_offset"] == {"site": "site-move", "n": 30,
                                               "engine_points": engine.tolist()}  # fmt: skip
    assert out.risk_details["p_over_4mm"] == [0.01] * 7  # the engine's details are kept
    assert [lm.x for lm in raw.landmarks] == engine[:, 0].tolist()  # the input is unchanged
    assert site_offset_apply(result=raw, manifest=mv.manifest, site=other) is raw
    assert site_offset_apply(result=raw, manifest={"sha256": "e" * 64}, site=site) is raw
    assert site_offset_apply(result=raw, manifest=mv.manifest, site=None) is raw
    flat = engine.copy()
    flat[1] = flat[0]  # S on N: no face frame; the engine's points, and the reason
    kept = site_offset_apply(result=_engine_result(flat), manifest=mv.manifest, site=site)
    assert _points([{"x": lm.x, "y": lm.y} for lm in kept.landmarks]) == pytest.approx(flat)
    assert "S and N coincide" in kept.risk_details["site_offset"]["not_applied"]


def test_a_recalibration_fits_on_the_engines_own_points_not_the_corrected_ones(
    make_user, admin_user
):
    mv, site, rad = _calibrating("site-refit", make_user, admin_user)
    engine = landmark_rows(0.9)
    for i in range(30):  # shown corrected (A +5 px) and accepted as shown
        study = make_study(site=site, spacing_row_mm=0.1, spacing_col_mm=0.1, status="reviewed")
        shown = [dict(lm) for lm in engine]
        shown[2]["x"] += 5.0
        pred = PredictionFactory(
            study=study, model_version=mv, landmarks=shown, case_risk=0.01 + i / 1000,
            risk_details={"site_offset": {"site": site.key, "n": 30,
                                          "engine_points": _points(engine).tolist()}},
        )  # fmt: skip
        Review.objects.create(study=study, prediction=pred, reviewer=rad, outcome="accepted",
                              landmarks_before=shown, landmarks_after=shown)  # fmt: skip
    proposal = site_calibrate(site=site, user=admin_user)
    moved = LandmarkOffset.from_dict(proposal["landmark_offset"]).apply(_points(engine))
    assert moved[2] - _points(engine)[2] == pytest.approx([5.0 * 30 / 35, 0.0], abs=1e-4)
    assert proposal["offset"]["mre_before_mm"] == pytest.approx(0.5 / 7, abs=1e-3)


def test_the_risk_threshold_is_certified_on_leave_one_out_corrected_cases(make_user, admin_user):
    mv, site, rad = _calibrating("site-loo0", make_user, admin_user)
    for i in range(30):  # every case: A 4.3 mm off, the same way (the site's convention)
        _reviewed(site, mv, risk=0.01 + i / 1000, off_mm=4.3, reviewer=rad)
    proposal = site_calibrate(site=site, user=admin_user)
    assert proposal["offset"]["unsafe_before"] == 30
    # each case corrected by the other 29: 4.3 x (1 - 29 / 34) = 0.63 mm left
    assert proposal["offset"]["unsafe_after"] == 0
    assert proposal["offset"]["mre_after_mm"] == pytest.approx(4.3 * 5 / 34 / 7, abs=1e-3)
    assert proposal["unsafe_cases"] == 0
    assert proposal["released"] == 30
    assert proposal["threshold"] == pytest.approx(0.039)


def test_without_a_face_frame_no_offset_is_proposed_and_it_says_why(make_user, admin_user):
    mv, site, rad = _calibrating("site-flat", make_user, admin_user)
    for i in range(30):
        study = make_study(site=site, spacing_row_mm=0.1, spacing_col_mm=0.1, status="reviewed")
        rows = landmark_rows(0.9)
        rows[1] = {**rows[1], "x": rows[0]["x"], "y": rows[0]["y"]}  # N on S
        pred = PredictionFactory(study=study, model_version=mv, landmarks=rows,
                                 case_risk=0.01 + i / 1000)  # fmt: skip
        Review.objects.create(study=study, prediction=pred, reviewer=rad, outcome="accepted",
                              landmarks_before=rows, landmarks_after=rows)  # fmt: skip
    proposal = site_calibrate(site=site, user=admin_user)
    assert proposal["landmark_offset"] is None
    assert proposal["offset"]["note"].startswith("no landmark offset: fewer than 2 cases")
    assert proposal["n"] == 30


def test_a_stored_offset_that_is_not_one_keeps_the_engines_points_and_the_global_gate():
    mv = _model()
    site = Site.objects.create(key="site-bad0", policy={
        "model_sha256": mv.sha256, "threshold": 0.9, "n": 30, "alpha": 0.1,
        "landmark_offset": {"offsets": [[0.01, 0.0]] * 6, "n": 30, "prior_cases": 5}})  # fmt: skip
    engine = _points(landmark_rows(0.9))
    out = site_offset_apply(result=_engine_result(engine), manifest=mv.manifest, site=site)
    assert _points([{"x": lm.x, "y": lm.y} for lm in out.landmarks]) == pytest.approx(engine)
    assert "7 rows of 2" in out.risk_details["site_offset"]["not_applied"]
    _, _, _, decision = prediction_decide(
        result=out, spacing=(0.1, 0.1), width=2000, model_version=mv, shape_model=None, site=site
    )
    # the site's threshold (0.9) was certified on corrected points: not used for this case
    assert decision.as_dict()["risk"]["source"] == "global"


def test_a_site_calibration_is_in_force_only_under_the_model_it_was_fitted_for(admin_user):
    mv = _model()
    model_version_activate(model_version=mv, user=admin_user)
    Site.objects.create(key="site-live", policy={"model_sha256": mv.sha256, "threshold": 0.2,
                                                 "landmark_offset": {"n": 30}})  # fmt: skip
    Site.objects.create(key="site-old0", policy={"model_sha256": "0" * 64, "threshold": 0.3,
                                                 "model": "mahtnet 1.0.0",
                                                 "landmark_offset": {"n": 30}})  # fmt: skip
    rows = {r["site"]: r for r in site_list()}
    assert rows["site-live"]["policy"] == "site calibration"
    assert (rows["site-live"]["threshold"], rows["site-live"]["landmark_offset"]) == (0.2, True)
    old = rows["site-old0"]
    assert old["policy"] == "global calibration (site calibration fitted for mahtnet 1.0.0)"
    assert old["threshold"] is None
    assert (old["landmark_offset"], old["ood_reference"]) == (False, "global")
