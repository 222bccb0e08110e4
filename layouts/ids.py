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
