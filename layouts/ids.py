"""Every component id the page tree hands out; callbacks import them from here."""

URL = "app-url"
THEME = "app-theme"
THEME_TOGGLE = "nav-theme-toggle"
TIME_RANGE = "nav-time-range"
CUSTOM_RANGE = "nav-custom-range"
CUSTOM_START = "nav-custom-start"
CUSTOM_END = "nav-custom-end"
REFRESH = "nav-refresh"
INTERVAL = "app-interval"
LAST_UPDATE = "nav-last-update"
PAGE_META = "page-meta"
NAV_LINKS = "nav-links"
DEMO_BADGE = "nav-demo-badge"
ALERT_BANNER = "app-alert-banner"
ALERTS_BODY = "alerts-body"
TRENDS_SERIES = "trends-series"
TRENDS_RESOLUTION = "trends-resolution"
TRENDS_AGGREGATION = "trends-aggregation"
TRENDS_OVERLAYS = "trends-overlays"
TRENDS_CSV = "trends-csv"
TRENDS_NOTE = "trends-note"
TRENDS_GRAPH = "trends-graph"
ADMIN_KEY_NAME = "admin-key-name"
ADMIN_KEY_SCOPES = "admin-key-scopes"
ADMIN_KEY_DAYS = "admin-key-days"
ADMIN_KEY_CREATE = "admin-key-create"
ADMIN_KEY_REVOKE = "admin-key-revoke"
ADMIN_NEW_KEY = "admin-new-key"
ADMIN_NEW_KEY_TOKEN = "admin-new-key-token"
ADMIN_KEYS = "admin-keys"

VARIABLES_URL = "page-variables-url"
PANEL_GRAPH = "panel-graph"
RENDER_STATE = "panel-render-state"  # which answer each panel of a page holds
VARIABLE = "dashboard-variable"
VARIABLE_BOX = "dashboard-variable-box"
PANEL_CSV = "panel-csv"
DASHBOARD_ZIP = "dashboard-zip"


def panel_graph(dashboard_id: str, panel_id: str) -> dict[str, str]:
    """Return the id of one panel's graph."""
    return {"type": PANEL_GRAPH, "dashboard": dashboard_id, "panel": panel_id}


def panel_dom_id(dashboard_id: str, panel_id: str) -> str:
    """Return the DOM id of a panel's card, for links and tests."""
    return f"panel-{dashboard_id}-{panel_id}"


def nav_link(dashboard_id: str) -> str:
    """Return the id of a dashboard's link in the navigation bar."""
    return f"nav-link-{dashboard_id}"


def panel_csv(dashboard_id: str, panel_id: str) -> dict[str, str]:
    """Return the id of a panel's Download CSV link."""
    return {"type": PANEL_CSV, "dashboard": dashboard_id, "panel": panel_id}


def render_state(dashboard_id: str) -> dict[str, str]:
    """Return the id of the store holding which answer each panel of a dashboard's page shows."""
    return {"type": RENDER_STATE, "dashboard": dashboard_id}


def dashboard_zip(dashboard_id: str) -> dict[str, str]:
    """Return the id of a dashboard's Download all link."""
    return {"type": DASHBOARD_ZIP, "dashboard": dashboard_id}


def variable(dashboard_id: str, name: str) -> dict[str, str]:
    """Return the id of a dashboard variable's selector."""
    return {"type": VARIABLE, "dashboard": dashboard_id, "name": name}


def variable_box(dashboard_id: str, name: str) -> dict[str, str]:
    """Return the id of the box around a variable's selector (hidden while it has no values)."""
    return {"type": VARIABLE_BOX, "dashboard": dashboard_id, "name": name}


SILENCE_RULE = "silence-rule"
SILENCE_LABELS = "silence-labels"
SILENCE_FOR = "silence-for"
SILENCE_REASON = "silence-reason"
SILENCE_CREATE = "silence-create"
SILENCE_END = "silence-end"
SILENCE_MESSAGE = "silence-message"
SILENCE_CHANGED = "silence-changed"

EXPLORE_QUERY = "explore-query"
EXPLORE_RUN = "explore-run"
EXPLORE_SUGGESTIONS = "explore-suggestions"
EXPLORE_SUGGESTION = "explore-suggestion"
EXPLORE_SUGGESTED = "explore-suggested"
EXPLORE_ERROR = "explore-error"
EXPLORE_VIEW = "explore-view"
EXPLORE_GRAPH = "explore-graph"
EXPLORE_TABLE = "explore-table"
EXPLORE_CSV = "explore-csv"
EXPLORE_DRAWN = "explore-drawn"
EXPLORE_HISTORY = "explore-history"
EXPLORE_HISTORY_LIST = "explore-history-list"
EXPLORE_HISTORY_ITEM = "explore-history-item"
EXPLORE_ADD = "explore-add"
EXPLORE_NOTE = "explore-note"
EXPLORE_ADDRESS = "explore-address"


def explore_suggestion(index: int) -> dict:
    """Return the id of the Explore editor's n-th suggestion."""
    return {"type": EXPLORE_SUGGESTION, "index": index}


def explore_history_item(index: int) -> dict:
    """Return the id of the n-th query in the Explore history."""
    return {"type": EXPLORE_HISTORY_ITEM, "index": index}


EDIT_DASHBOARD = "edit-dashboard"
EDIT_TITLE = "edit-title"
EDIT_ACCESS = "edit-access"
EDIT_SAVE = "edit-save"
EDIT_VERSION = "edit-version"
EDIT_OPEN = "edit-open"
EDIT_NEW = "edit-new"
EDIT_CLONE = "edit-clone"
EDIT_DELETE = "edit-delete"
EDIT_YAML = "edit-download-yaml"
EDIT_JSON = "edit-download-json"
EDIT_UPLOAD = "edit-upload"
EDIT_IMPORT = "edit-import"
EDIT_PASTE = "edit-paste"
EDIT_PASTE_IMPORT = "edit-paste-import"
EDIT_STATUS = "edit-status"
EDIT_GRID = "edit-grid"
EDIT_CARD = "edit-card"
EDIT_ADD = "edit-add"
EDIT_DUPLICATE = "edit-duplicate"
EDIT_REMOVE = "edit-remove"
EDIT_LAYOUT = "edit-layout"
EDIT_DRAFT = "edit-draft"
EDIT_FIELD = "edit-field"
EDIT_EXPR = "edit-expr"
EDIT_LEGEND = "edit-legend"
EDIT_ERROR = "edit-error"
EDIT_PREVIEW = "edit-preview"
EDIT_VARIABLES = "edit-variables"
EDIT_VERSIONS = "edit-versions"
EDIT_RESTORE = "edit-restore"
EDIT_REPORT = "edit-report"


def edit_card(panel_id: str) -> dict:
    """Return the id of a panel's card on the editor's grid."""
    return {"type": EDIT_CARD, "index": panel_id}


def edit_field(name: str) -> dict:
    """Return the id of one field of the panel form (title, type, unit, ...)."""
    return {"type": EDIT_FIELD, "name": name}


def edit_error(name: str) -> dict:
    """Return the id of the message beside a field of the panel form."""
    return {"type": EDIT_ERROR, "name": name}


def edit_restore(version: int) -> dict:
    """Return the id of the Restore button of one version."""
    return {"type": EDIT_RESTORE, "index": version}
