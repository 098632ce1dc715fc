"""Every table npsloop owns, gathered for Alembic and for tests."""

from npsloop.services.classifier import models as classifier_models  # noqa: F401
from npsloop.services.deliveries import models as delivery_models  # noqa: F401
from npsloop.services.followup import models as followup_models  # noqa: F401
from npsloop.services.ingest import models as ingest_models  # noqa: F401
from npsloop.services.privacy import models as privacy_models  # noqa: F401
from npsloop.shared import models as shared_models  # noqa: F401
from npsloop.shared.db import Base

metadata = Base.metadata
