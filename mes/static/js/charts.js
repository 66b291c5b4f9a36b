/*
 * Draws the report charts with the vendored Chart.js (vendor/chartjs, see
 * vendor/README.md). Each <figure data-chart> holds its specification as JSON in its
 * data-spec attribute (written by mes/reports/charts.py): no inline script and no eval,
 * so the Content-Security-Policy (script-src 'self') holds.
 * Numbers on axes and in tooltips are formatted in the page's language (<html lang>).
 * "Save chart as PNG" downloads the drawn chart.
 */
(function () {
  "use strict";

  var locale = document.documentElement.lang || "en";
  var number = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });

  function fmt(value, unit) {
    if (value === null || value === undefined || isNaN(value)) { return "–"; }
    return number.format(value) + (unit || "");
  }

  function config(spec) {
    var horizontal = !!spec.horizontal;
    var valueAxis = horizontal ? "x" : "y";
    var categoryAxis = horizontal ? "y" : "x";
    var pareto = spec.type === "pareto";
    var datasets = spec.series.map(function (s) {
      var line = s.type === "line" || spec.type === "line";
      return {
        type: line ? "line" : "bar",
        label: s.name,
        data: s.values,
        backgroundColor: s.color,
        borderColor: s.color,
        borderWidth: line ? 2 : 0,
        pointRadius: line ? 3 : 0,
        spanGaps: false,
        clip: line ? false : undefined,  // a point at 100 % is drawn whole
        yAxisID: s.axis === "pct" ? "pct" : undefined,
        order: line ? 0 : 1,
        unit: s.axis === "pct" ? "%" : spec.unit
      };
    });
    var scales = {};
    scales[categoryAxis] = {
      stacked: !!spec.stacked,
      ticks: { autoSkip: !pareto && spec.labels.length > 24, maxRotation: 60, minRotation: 0 }
    };
    var y = spec.y || {};
    scales[valueAxis] = {
      stacked: !!spec.stacked,
      beginAtZero: y.min === undefined ? true : y.min === 0,
      min: y.min, max: y.max,
      title: { display: !!y.title, text: y.title || "" },
      ticks: { callback: function (value) { return fmt(value, spec.unit); } }
    };
    if (pareto) {
      scales.pct = {
        position: "right", min: 0, max: 100,
        grid: { drawOnChartArea: false },
        title: { display: true, text: spec.pct.title },
        ticks: { callback: function (value) { return fmt(value, "%"); } }
      };
    }
    return {
      type: "bar",
      // A white background, so a saved PNG reads on any viewer.
      plugins: [{
        id: "background",
        beforeDraw: function (chart) {
          var ctx = chart.ctx;
          ctx.save();
          ctx.globalCompositeOperation = "destination-over";
          ctx.fillStyle = "#ffffff";
          ctx.fillRect(0, 0, chart.width, chart.height);
          ctx.restore();
        }
      }],
      data: { labels: spec.labels, datasets: datasets },
      options: {
        locale: locale,
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: {
            display: datasets.length > 1, position: "bottom",
            labels: { sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } }
          },
          tooltip: {
            callbacks: {
              label: function (item) {
                var v = horizontal ? item.parsed.x : item.parsed.y;
                return item.dataset.label + ": " + fmt(v, item.dataset.unit);
              }
            }
          }
        }
      }
    };
  }

  function draw(figure) {
    var source = figure.getAttribute("data-spec");
    var canvas = figure.querySelector("canvas");
    if (!source || !canvas || typeof window.Chart !== "function") { return; }
    var spec = JSON.parse(source);
    if (spec.horizontal) {
      // One bar row of about 1.6 rem per category, so no label is skipped.
      figure.classList.add("chart-tall-" + Math.min(4, Math.ceil(spec.labels.length / 10)));
    }
    var chart = new window.Chart(canvas, config(spec));
    figure.chart = chart;
    figure.setAttribute("data-drawn", "");
    var button = figure.querySelector(".chart-export");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var link = document.createElement("a");
        link.href = chart.toBase64Image("image/png", 1);
        link.download = button.getAttribute("data-filename") || "chart.png";
        document.body.appendChild(link);
        link.click();
        link.remove();
      });
    }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("figure[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
