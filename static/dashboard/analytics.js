/* The analytics page's charts (templates/dashboard/analytics.html), drawn by Chart.js
 * (static/vendor/chartjs/, loaded before this file) from the page's JSON island
 * `#analytics-data` (apps/dashboard/analytics.py). Every number is also in the page's
 * server-rendered tables; without this script the page loses only the pictures. Choosing a
 * channel applies the filters at once. No dependencies but Chart.js, no build step. */
(function () {
  "use strict";

  var form = document.getElementById("analytics-filters");
  if (form) {
    form.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (form.requestSubmit) {
          form.requestSubmit();
        } else {
          form.submit();
        }
      });
    });
  }

  var island = document.getElementById("analytics-data");
  if (!island || typeof window.Chart === "undefined") {
    return;
  }
  var Chart = window.Chart;
  var data = JSON.parse(island.textContent);
  var labels = data.labels || {};

  var rootStyle = window.getComputedStyle(document.documentElement);
  function cssVar(name, fallback) {
    var value = rootStyle.getPropertyValue(name).trim();
    return value || fallback;
  }
  var PALETTE = [
    cssVar("--brand", "#0b6bcb"), "#067647", "#b54708", "#7a5af8", "#c11574", "#0e9384",
    "#5d6678", "#dc6803"
  ];
  function color(index) {
    return PALETTE[index % PALETTE.length];
  }

  Chart.defaults.color = cssVar("--muted", "#5d6678");
  Chart.defaults.borderColor = cssVar("--line", "#e2e5ee");
  Chart.defaults.font.family = window.getComputedStyle(document.body).fontFamily;
  Chart.defaults.locale = document.documentElement.lang || "en";
  Chart.defaults.maintainAspectRatio = false;
  if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
    Chart.defaults.animation = false;
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  function format(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (_match, key) {
      return values[key];
    });
  }

  var integerTicks = { precision: 0 };
  var series = data.series || [];
  var days = series.map(function (row) { return row.day; });

  // 1. Conversations, visitor messages and leads per day.
  draw("chart-daily", {
    type: "line",
    data: {
      labels: days,
      datasets: ["conversations", "visitor_messages", "leads"].map(function (key, index) {
        return {
          label: (labels.series || {})[key] || key,
          data: series.map(function (row) { return row[key]; }),
          borderColor: color(index),
          backgroundColor: color(index),
          cubicInterpolationMode: "monotone",
          pointRadius: series.length > 62 ? 0 : 2
        };
      })
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, ticks: integerTicks } }
    }
  });

  // 2. The funnel: visitors → engaged → leads → qualified → won.
  var funnel = data.funnel || [];
  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: funnel.map(function (row) { return (labels.funnel || {})[row.step] || row.step; }),
      datasets: [{
        label: labels.count || "",
        data: funnel.map(function (row) { return row.count; }),
        backgroundColor: funnel.map(function (_row, index) { return color(index); })
      }]
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: integerTicks } }
    }
  });

  // 3. Every channel side by side.
  var channels = data.channels || [];
  draw("chart-channels", {
    type: "bar",
    data: {
      labels: channels.map(function (row) {
        return (labels.channels || {})[row.channel] || row.channel;
      }),
      datasets: ["conversations", "visitor_messages", "leads"].map(function (key, index) {
        return {
          label: (labels.series || {})[key] || key,
          data: channels.map(function (row) { return row[key]; }),
          backgroundColor: color(index)
        };
      })
    },
    options: { scales: { y: { beginAtZero: true, ticks: integerTicks } } }
  });

  // 4. Tokens (left axis) and cost (right axis) per model and day: one stack each.
  var models = data.models || [];
  var modelNames = [];
  models.forEach(function (row) {
    if (modelNames.indexOf(row.label) < 0) {
      modelNames.push(row.label);
    }
  });
  function perDay(name, pick) {
    var byDay = {};
    models.forEach(function (row) {
      if (row.label === name) {
        byDay[row.day] = (byDay[row.day] || 0) + pick(row);
      }
    });
    return days.map(function (day) { return byDay[day] || 0; });
  }
  var modelDatasets = [];
  modelNames.forEach(function (name, index) {
    modelDatasets.push({
      label: format(labels.model_tokens || "%(model)s", { model: name }),
      data: perDay(name, function (row) { return row.input_tokens + row.output_tokens; }),
      backgroundColor: color(index),
      stack: "tokens",
      yAxisID: "y"
    });
    modelDatasets.push({
      label: format(labels.model_cost || "%(model)s", { model: name }),
      data: perDay(name, function (row) { return row.cost; }),
      backgroundColor: color(index + 3),
      stack: "cost",
      yAxisID: "cost"
    });
  });
  draw("chart-models", {
    type: "bar",
    data: { labels: days, datasets: modelDatasets },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true },
        y: {
          stacked: true,
          beginAtZero: true,
          ticks: integerTicks,
          title: { display: true, text: labels.tokens || "" }
        },
        cost: {
          stacked: true,
          beginAtZero: true,
          position: "right",
          grid: { drawOnChartArea: false },
          title: { display: true, text: labels.cost || "" }
        }
      }
    }
  });
})();
