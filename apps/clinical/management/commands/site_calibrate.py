import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.clinical.models import Site
from apps.clinical.services.sites import site_calibrate, site_calibration_decide
from apps.core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Propose a site calibration from its reviewed cases (the site's landmark offset, the "
        "release threshold certified by Learn-then-Test with its Clopper-Pearson bound, the "
        "site OOD reference); --accept stores it as --by."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site key (see site_list)")
        parser.add_argument("--accept", action="store_true")
        parser.add_argument("--by", help="username the acceptance is recorded under")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        site = Site.objects.filter(key=options["site"]).first()
        if site is None:
            raise CommandError(f"no site {options['site']!r} (see: manage.py site_list)")
        user = None
        if options["by"]:
            user = get_user_model().objects.filter(username=options["by"]).first()
            if user is None or not user.has_perm("accounts.manage_thresholds"):
                raise CommandError(f"{options['by']!r} is not an admin who may set thresholds")
        elif options["accept"]:
            raise CommandError("--accept needs --by USERNAME (it is audited)")
        try:
            proposal = site_calibrate(site=site, user=user)
            if options["accept"]:
                site_calibration_decide(site=site, accept=True, user=user)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        out = {**proposal, "accepted": bool(options["accept"])}
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=1))
        else:
            self.stdout.write(
                f"{site.key}: threshold {out['threshold']}, expected release "
                f"{out['release_rate']:.0%} of {out['n']}, unsafe-release bound "
                f"{out['unsafe_rate_upper']:.3f}{' (accepted)' if out['accepted'] else ''}"
            )
            off = out.get("offset") or {}
            if off.get("mre_after_mm") is not None:
                self.stdout.write(
                    f"landmark offset: error on its reviewed cases {off['mre_before_mm']:.2f} -> "
                    f"{off['mre_after_mm']:.2f} mm, cases with a landmark > 4 mm "
                    f"{off['unsafe_before']} -> {off['unsafe_after']} (leave-one-out)"
                )
            elif off.get("note"):
                self.stdout.write(off["note"])
