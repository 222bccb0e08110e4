'use strict';
// The trace types Pulseboard's charts use, and nothing else.
var Plotly = require('plotly.js/lib/core');
Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/pie'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/indicator'),
    require('plotly.js/lib/table'),
]);
module.exports = Plotly;
