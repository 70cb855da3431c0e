"""factory_boy factories for every model, shared by every app's tests.

One module per app (accounts, clinical, issues, models, monitoring); import them from
here. Factories that need groups rely on the autouse ``_roles`` fixture of
tests/conftest.py.
"""

from tests.factories.accounts import (
    PASSWORD,
    ApiClientFactory,
    ApiTokenFactory,
    SecurityEventFactory,
    UserFactory,
)
from tests.factories.clinical import (
    NAMES,
    POINTS,
    SPACING,
    AuditEventFactory,
    CaseEventFactory,
    PhiDigestFactory,
    PredictionFactory,
    ReviewFactory,
    ReviewTaskFactory,
    RoutingPolicyFactory,
    ShadowPredictionFactory,
    SiteFactory,
    StudyFactory,
    landmark_rows,
)
from tests.factories.datasets import (
    DatasetFactory,
    DatasetFileFactory,
    DatasetImageFactory,
    DatasetVersionFactory,
    FindingFactory,
    ImageCheckFactory,
    ProfileRunFactory,
    SuspectAnnotationFactory,
    ValidationRunFactory,
)
from tests.factories.issues import (
    FingerprintFactory,
    IssueEventFactory,
    IssueFactory,
    IssueSettingsFactory,
    NotificationFactory,
    NotifyThrottleFactory,
    OccurrenceFactory,
    ReproductionStepFactory,
)
from tests.factories.models import (
    EvaluationRunFactory,
    ModelVersionFactory,
    ReleaseGateFactory,
    RunFindingFactory,
    RunMetricFactory,
    TrainingRunFactory,
)
from tests.factories.monitoring import (
    HealthResultFactory,
    HealthRunFactory,
    HeartbeatFactory,
    IncidentEventFactory,
    IncidentFactory,
    IncidentNotificationFactory,
    MonitorSettingsFactory,
    ReadinessCheckFactory,
    WorkerEnvironmentFactory,
)
from tests.factories.outbox import OutboxMessageFactory

__all__ = [
    "DatasetFactory",
    "DatasetFileFactory",
    "DatasetImageFactory",
    "DatasetVersionFactory",
    "FindingFactory",
    "ImageCheckFactory",
    "ProfileRunFactory",
    "SuspectAnnotationFactory",
    "ValidationRunFactory",
    "EvaluationRunFactory",
    "ReleaseGateFactory",
    "RunFindingFactory",
    "RunMetricFactory",
    "TrainingRunFactory",
    "ShadowPredictionFactory",
    "HealthResultFactory",
    "HealthRunFactory",
    "IncidentEventFactory",
    "IncidentFactory",
    "IncidentNotificationFactory",
    "MonitorSettingsFactory",
    "WorkerEnvironmentFactory",

    "OutboxMessageFactory", "PhiDigestFactory", "SecurityEventFactory",
    "NAMES", "PASSWORD", "POINTS", "SPACING",
    "ApiClientFactory", "ApiTokenFactory", "AuditEventFactory", "CaseEventFactory",
    "FingerprintFactory", "HeartbeatFactory", "IssueEventFactory", "IssueFactory",
    "IssueSettingsFactory", "ModelVersionFactory", "NotificationFactory",
    "NotifyThrottleFactory", "OccurrenceFactory", "PredictionFactory", "ReadinessCheckFactory",
    "ReproductionStepFactory", "ReviewFactory", "ReviewTaskFactory", "RoutingPolicyFactory",
    "SiteFactory",
    "StudyFactory", "UserFactory", "landmark_rows",
]  # fmt: skip
