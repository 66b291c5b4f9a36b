"""Imports every module that defines tables, so that Base.metadata is complete (migrations,
checks). A new domain's models module is added here."""

from mes.audit import models as audit  # noqa: F401
from mes.auth import models as auth  # noqa: F401
from mes.catalog import models as catalog  # noqa: F401
from mes.changes import models as changes  # noqa: F401
from mes.events import models as events  # noqa: F401
from mes.floor import models as floor  # noqa: F401
from mes.forecast import models as forecast  # noqa: F401
from mes.orders import models as orders  # noqa: F401
from mes.partners import models as partners  # noqa: F401
from mes.quality import models as quality  # noqa: F401
from mes.reports import models as reports  # noqa: F401
from mes.shipping import models as shipping  # noqa: F401
from mes.spc import models as spc  # noqa: F401
from mes.testfloor import models as testfloor  # noqa: F401
