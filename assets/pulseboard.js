/* Client-side callbacks: theme, custom range and the active link, with no round trip. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  pulseboard: {
    toggleTheme: function (clicks, theme) {
      return theme === "dark" ? "light" : "dark";
    },
    applyTheme: function (theme) {
      var t = theme === "dark" ? "dark" : "light";
      document.documentElement.dataset.theme = t;
      return t === "dark" ? "◑ Light" : "◐ Dark";
    },
    customRangeStyle: function (value) {
      return { display: value === "custom" ? "flex" : "none" };
    },
  },
});
