"""The static dataset website: overview, clip browser and score distributions.

`build_site` turns a release folder (see `acav1m_hf.release`) into a folder of plain HTML, CSS and JavaScript that
works from ``file://`` and from any static host (GitHub Pages, the Hub): there is no server code and no build step.

::

    SITE/
      index.html              overview: card, counts and hours per split, pass rates, how to load, links
      browse.html             clip browser: search, filters, playback with box and mask overlays
      distributions.html      one histogram per alignment score, threshold marked (inline SVG)
      croissant.json          copy of the release's Croissant record, so the link works anywhere
      assets/                 style.css, browse.js (copied from acav1m_hf/site/assets)
      data/manifest.js        totals, vocabularies, per-chunk facets, term-file list
      data/chunks/NNNNN.js    compact columnar index, ``chunk_rows`` rows per file, one split per file
      data/terms/PP.js        search terms starting with PP -> chunks that contain them
      media/KEY.mp4 ...       mp4, mask.png and jpg of at most ``max_media`` clips

The modules, in the order a build uses them:

- `build`: `build_site`, the staging folder and the rules that keep a user's folder safe;
- `reading`: the card, ``report.json`` and the Croissant record set; `links`: hrefs to release files;
- `index`: the Parquet index to chunk, term and manifest files, plus the totals and histograms the pages show;
- `media`: which clips get their media, copied out of their shards;
- `stats`: the one choice between the report's and the index's figures; `charts`: SVG geometry;
- `pages` with ``templates/*.html`` (Jinja2, autoescaped) and `markdown` (the card, through markdown-it-py);
- `serve`: a local HTTP server with byte ranges, for ``acav1m site --serve``.

Text from the data is escaped by Jinja2's autoescape in the pages or inserted with ``textContent`` by
``browse.js``; nothing from the data is ever parsed as markup.
"""

from acav1m_hf.site.build import MARKER, build_site
from acav1m_hf.site.index import DEFAULT_CHUNK_ROWS, TERM_PATTERN
from acav1m_hf.site.markdown import render_markdown
from acav1m_hf.site.media import DEFAULT_MAX_MEDIA
from acav1m_hf.site.serve import make_server, serve

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_MAX_MEDIA",
    "MARKER",
    "TERM_PATTERN",
    "build_site",
    "make_server",
    "render_markdown",
    "serve",
]
