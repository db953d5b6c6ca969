// Show the response headers of this very page, fetched again with HEAD.
(function () {
  var out = document.getElementById('status');
  fetch(location.pathname, { method: 'HEAD', cache: 'no-store' }).then(function (r) {
    var names = ['server', 'date', 'content-type', 'content-length', 'etag', 'last-modified'];
    out.textContent = 'HEAD ' + location.pathname + ' \u2192 ' + r.status + ' \u2014 ' +
      names.filter(function (n) { return r.headers.get(n); })
           .map(function (n) { return n + ': ' + r.headers.get(n); }).join(' \u00b7 ');
  }).catch(function (e) { out.textContent = 'Could not fetch the headers: ' + e; });
})();
