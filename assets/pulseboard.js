/* Client-side callbacks: theme, custom range, the active link and variables in the address, with no round trip. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  pulseboard: {
    toggleTheme: function (clicks, theme) {
      return theme === "dark" ? "light" : "dark";
    },
    applyTheme: function (theme) {
      var t = theme === "dark" ? "dark" : "light";
      document.documentElement.dataset.theme = t;
      // The server opens the next page with its charts already drawn in this theme.
      document.cookie = "pulseboard_theme=" + t + "; path=/; max-age=31536000; SameSite=Lax";
      return t === "dark" ? "◑ Light" : "◐ Dark";
    },
    customRangeStyle: function (value) {
      return { display: value === "custom" ? "flex" : "none" };
    },
    exploreView: function (view) {
      var graph = view === "table" ? { display: "none" } : { height: "100%", width: "100%" };
      var table = view === "table" ? { display: "block" } : { display: "none" };
      return [graph, table];
    },
    keepExplore: function (drawn) {
      // The query and range go into the address, so a copied link opens the same view.
      if (!drawn || !drawn.query) {
        return window.dash_clientside.no_update;
      }
      var params = new URLSearchParams();
      params.set("query", drawn.query);
      params.set("range", drawn.range || "1h");
      if (drawn.range === "custom") {
        params.set("start", drawn.custom_start || "");
        params.set("end", drawn.custom_end || "");
      }
      var query = params.toString();
      window.history.replaceState(window.history.state, "", window.location.pathname + "?" + query);
      return query;
    },
    keepVariables: function (values, ids) {
      // The chosen values go into the address, so a copied link opens the same view.
      var params = new URLSearchParams(window.location.search);
      ids.forEach(function (id, i) {
        if (values[i]) {
          params.set(id.name, values[i]);
        } else {
          params.delete(id.name);
        }
      });
      var query = params.toString();
      window.history.replaceState(window.history.state, "", window.location.pathname + (query ? "?" + query : ""));
      return query;
    },
  },
});

/* The Explore editor's keys: Tab takes the first suggestion, Ctrl+Enter (or Cmd+Enter) runs the query. */
document.addEventListener("keydown", function (event) {
  var target = event.target;
  if (!target || target.id !== "explore-query") {
    return;
  }
  if (event.key === "Tab" && !event.shiftKey) {
    var first = document.querySelector("#explore-suggestions .suggestion");
    if (first) {
      event.preventDefault();
      first.click();
    }
  } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    var run = document.getElementById("explore-run");
    if (run) {
      run.click();
    }
  }
});

/* The editor's grid: drag a card to move it, its corner to resize it; the new place goes to the page's
   draft through the edit-layout store (cells of the 12-column grid, as the dashboard file has them). */
(function () {
  var drag = null;
  function cell(grid) {
    var style = window.getComputedStyle(grid);
    var gap = parseFloat(style.columnGap) || 8;
    var rowGap = parseFloat(style.rowGap) || gap;
    var inner = grid.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    var row = parseFloat(style.gridAutoRows) || 44;
    return { w: (inner + gap) / 12, h: row + rowGap };
  }
  document.addEventListener("pointerdown", function (event) {
    var card = event.target.closest && event.target.closest(".editor-card");
    if (!card || event.button !== 0) {
      return;
    }
    var grid = card.closest(".editor-grid");
    drag = {
      card: card, grid: grid, x0: event.clientX, y0: event.clientY, moved: false,
      resize: event.target.classList.contains("editor-resize"),
      at: { x: +card.dataset.x, y: +card.dataset.y, w: +card.dataset.w, h: +card.dataset.h },
    };
    card.setPointerCapture && card.setPointerCapture(event.pointerId);
  });
  document.addEventListener("pointermove", function (event) {
    if (!drag) {
      return;
    }
    var dx = event.clientX - drag.x0, dy = event.clientY - drag.y0;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 6) {
      return;
    }
    drag.moved = true;
    drag.card.classList.add("dragging");
    if (drag.resize) {
      drag.card.style.width = drag.card.offsetWidth + dx + "px";
      drag.card.style.height = drag.card.offsetHeight + dy + "px";
      drag.x0 = event.clientX; drag.y0 = event.clientY;
      drag.dx = (drag.dx || 0) + dx; drag.dy = (drag.dy || 0) + dy;
    } else {
      drag.card.style.transform = "translate(" + dx + "px," + dy + "px)";
      drag.dx = dx; drag.dy = dy;
    }
  });
  document.addEventListener("pointerup", function () {
    if (!drag) {
      return;
    }
    var d = drag;
    drag = null;
    d.card.classList.remove("dragging");
    d.card.style.transform = ""; d.card.style.width = ""; d.card.style.height = "";
    if (!d.moved) {
      return;
    }
    var size = cell(d.grid), to = Object.assign({}, d.at);
    var cols = Math.round((d.dx || 0) / size.w), rows = Math.round((d.dy || 0) / size.h);
    if (d.resize) {
      to.w = Math.max(1, Math.min(12 - to.x, to.w + cols));
      to.h = Math.max(1, Math.min(12, to.h + rows));
    } else {
      to.x = Math.max(0, Math.min(12 - to.w, to.x + cols));
      to.y = Math.max(0, to.y + rows);
    }
    if (to.x === d.at.x && to.y === d.at.y && to.w === d.at.w && to.h === d.at.h) {
      return;
    }
    // A click follows this pointerup; the card it selects is the one just placed.
    window.dash_clientside.set_props("edit-layout", {
      data: { panel: d.card.dataset.panel, x: to.x, y: to.y, w: to.w, h: to.h, at: Date.now() },
    });
  });
})();
