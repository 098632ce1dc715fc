"""Every table npsloop owns, gathered for Alembic and for tests."""

from services.classifier import models as classifier_models  # noqa: F401
from services.deliveries import models as delivery_models  # noqa: F401
from services.followup import models as followup_models  # noqa: F401
from services.ingest import models as ingest_models  # noqa: F401
from services.privacy import models as privacy_models  # noqa: F401
from shared import models as shared_models  # noqa: F401
from shared.db import Base

metadata = Base.metadata
