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
