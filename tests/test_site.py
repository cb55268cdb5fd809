"""The static site: what `build_site` writes, the local server, and the pages in a real browser.

The browser tests drive Debian's Chromium through Playwright for Python with
``executable_path`` set (no ``playwright install``). Where Playwright or a
Chromium is missing they skip, unless ``ACAV1M_REQUIRE_BROWSER=1`` (CI), where
they fail instead: a site that was never opened in a browser is not tested.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from acav1m_hf.release import CARD, index_name, list_shards
from acav1m_hf.schema import SPLITS
from acav1m_hf.site import MARKER, TERM_PATTERN, build_site, make_server, render_markdown
from tests.conftest import HOSTILE_CAPTION


def _index(root: Path) -> list[dict[str, Any]]:
    rows = []
    for split in SPLITS:
        path = root / index_name(split)
        if path.is_file():
            rows += pq.read_table(path).to_pylist()
    return rows


def _js_payload(path: Path) -> list[Any]:
    """The JSON arguments of an ``ACAV.x(...);`` data file."""
    text = path.read_text(encoding="utf-8")
    match = re.fullmatch(r"ACAV\.\w+\((.*)\);\n", text, re.S)
    assert match, f"{path} is not a data call"
    return json.loads(f"[{match.group(1)}]")


def _chunks(site: Path) -> list[dict[str, Any]]:
    return [_js_payload(p)[1] for p in sorted((site / "data" / "chunks").glob("*.js"))]


@pytest.fixture(scope="module")
def site(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(release, tmp_path_factory.mktemp("site") / "site")


# --------------------------------------------------------------------------- build output


def test_pages_manifest_and_chunks_cover_the_index(release: Path, site: Path) -> None:
    for page in ("index.html", "browse.html", "distributions.html", "assets/browse.js", "assets/style.css"):
        assert (site / page).is_file(), page
    rows = _index(release)
    manifest = _js_payload(site / "data" / "manifest.js")[0]
    assert manifest["rows"] == len(rows) == sum(c["n"] for c in manifest["chunks"])
    # flag ids in order of first appearance, not of a set's (hash-seeded) iteration: the same release, the same files
    assert manifest["flags"] == list(dict.fromkeys(f for r in rows for f in r["alignment.flags"] or []))
    chunks = _chunks(site)
    assert [k for c in chunks for k in c["key"]] == [r["key"] for r in rows]
    by_key = {r["key"]: r for r in rows}
    for chunk, facets in zip(chunks, manifest["chunks"], strict=True):
        assert facets["passed"] == sum(chunk["passed"])
        for i, key in enumerate(chunk["key"]):
            row = by_key[key]
            assert manifest["splits"][chunk["split"]] == row["split"]
            assert chunk["caption"][i] == row["caption.text"]
            assert chunk["passed"][i] == int(row["alignment.passed"])
            box = row["labels.localization.box"]
            assert chunk["box"][i] == (None if box is None else pytest.approx(box, abs=1e-4))
            for score in ("language", "instance", "temporal"):
                value = row[f"alignment.{score}.score"]
                assert chunk[score][i] == (None if value is None else pytest.approx(value, abs=5e-4))
    assert (site / "croissant.json").read_bytes() == (release / "croissant.json").read_bytes()
    assert (site / MARKER).is_file()


def test_media_are_copied_up_to_max_media(release: Path, tmp_path: Path) -> None:
    site = build_site(release, tmp_path / "site", max_media=2)
    assert len(list((site / "media").glob("*.mp4"))) == 2
    chunks = _chunks(site)
    with_media = [k for c in chunks for k, m in zip(c["key"], c["media"], strict=True) if m & 1]
    assert len(with_media) == 2
    assert len({c["split"] for c in chunks for m in c["media"] if m & 1}) == 2, "the budget is shared by the splits"
    for key in with_media:
        assert (site / "media" / f"{key}.mp4").read_bytes()[4:8] == b"ftyp"
    none = build_site(release, tmp_path / "none", max_media=0)
    assert not list((none / "media").iterdir())


def test_small_chunks_stay_in_one_split_and_the_term_index_finds_every_word(release: Path, tmp_path: Path) -> None:
    site = build_site(release, tmp_path / "site", chunk_rows=2)
    chunks = _chunks(site)
    assert max(c["n"] for c in chunks) == 2 and len(chunks) >= 5
    terms: dict[str, list[int]] = {}
    for path in (site / "data" / "terms").glob("*.js"):
        prefix, group = _js_payload(path)
        assert all(t.startswith(prefix) for t in group)
        terms.update(group)
    for chunk_id, chunk in enumerate(chunks):
        for caption in chunk["caption"]:
            for word in TERM_PATTERN.findall((caption or "").lower()):
                assert chunk_id in terms[word], (word, chunk_id)


def test_distributions_mark_each_threshold_and_count_every_score(release: Path, site: Path) -> None:
    page = (site / "distributions.html").read_text(encoding="utf-8")
    rows = _index(release)
    report = json.loads((release / "report.json").read_text())
    for score in ("language", "instance", "temporal"):
        section = page.split(f'id="{score}"')[1].split("</section>")[0]
        counted = sum(int(n.replace(",", "")) for n in re.findall(r": ([\d,]+) clips</title>", section))
        assert counted == sum(r[f"alignment.{score}.score"] is not None for r in rows)
        threshold = report["config"][f"{score}_threshold"]
        assert f"threshold {threshold:g}" in section


def test_overview_shows_counts_rates_license_citation_and_links(release: Path, site: Path) -> None:
    page = (site / "index.html").read_text(encoding="utf-8")
    report = json.loads((release / "report.json").read_text())
    for split, entry in report["splits"].items():
        assert re.search(rf"<th>{split}</th><td>{entry['clips']}</td>", page)
    assert "CC BY 4.0" in page and "creativecommons.org/licenses/by/4.0" in page
    assert "load_dataset" in page and "streaming=True" in page and "mlcroissant" in page
    assert 'href="croissant.json"' in page
    assert "@misc{" in page or "@article{" in page or "@inproceedings{" in page
    for shard in (release / "data").glob("*.tar"):
        href = os.path.relpath(shard, site)
        assert f'href="{href}"' in page and (site / href).resolve() == shard.resolve()


def test_text_from_the_data_is_never_markup(release: Path, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script> [x](javascript:alert(3))"
    assert "<script" not in render_markdown(f"# {hostile}\n\n{hostile}\n\n- {hostile}\n\n| {hostile} |\n|---|\n| a |")
    assert "javascript:" not in render_markdown("[click](javascript:alert(1)) [ok](https://example.org)")
    assert '<a href="https://example.org">ok</a>' in render_markdown("[ok](https://example.org)")
    copy = tmp_path / "release"
    shutil.copytree(release, copy, ignore=shutil.ignore_patterns("*.tar"))
    card = (copy / CARD).read_text(encoding="utf-8")
    (copy / CARD).write_text(card.replace("---\n", f"---\npretty_name: '{hostile}'\n", 1) + f"\n\n{hostile}\n")
    site = build_site(copy, tmp_path / "site", max_media=0)
    for page in ("index.html", "browse.html", "distributions.html"):
        text = (site / page).read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text and "javascript:" not in text
    # captions only ever reach the page as JSON inside a data file
    assert HOSTILE_CAPTION not in (site / "browse.html").read_text(encoding="utf-8")


def test_refuses_to_overwrite_a_folder_it_did_not_make(release: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        build_site(release, tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def _cut_between_members(shard: Path) -> None:
    """Cut the shard before the header of its last sample: tarfile reads that as a shorter, well-formed archive."""
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    last = members[-1].name.split(".", 1)[0]
    shard.write_bytes(shard.read_bytes()[: next(m.offset for m in members if m.name.startswith(f"{last}."))])


def _add_hostile_member(shard: Path) -> None:
    with tarfile.open(shard, "a") as tar:
        info = tarfile.TarInfo("../../outside.mp4")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))


DAMAGE = {
    "truncated": (
        lambda shard: shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2]),
        "unreadable tar (unexpected end of data)",
    ),
    "cut-between-members": (_cut_between_members, "which the index puts in it (truncated"),
    "empty": (lambda shard: shard.write_bytes(b""), "unreadable tar (empty file)"),
    "gzip": (lambda shard: shard.write_bytes(gzip.compress(shard.read_bytes())), "gzip-compressed, not a plain tar"),
    "hostile-member": (_add_hostile_member, "member '../../outside.mp4' has a '..' part"),
}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_shard_stops_the_build_with_one_line_and_nothing_half_built(
    release: Path, release_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    from acav1m_hf.cli import main

    change, reason = DAMAGE[damage]
    shard = next(iter(list_shards(release_copy).values()))[0]  # the first clips of a split get their media copied
    change(shard)
    relative = shard.relative_to(release_copy).as_posix()

    fresh = tmp_path / "new" / "site"
    assert main(["site", str(release_copy), "-o", str(fresh)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"acav1m site: {relative}: ") and reason in err and err.count("\n") == 1, err
    assert not (tmp_path / "new").exists()  # not the site, not its staging folder, not the parent it made

    built = build_site(release, tmp_path / "built")  # a good site, which a failed rebuild must leave as it was
    (built / "CNAME").write_text("example.org\n")
    before = _tree(built)
    assert main(["site", str(release_copy), "-o", str(built)]) == 2
    assert reason in capsys.readouterr().err
    assert _tree(built) == before and sorted(p.name for p in tmp_path.iterdir()) == ["acav1m", "built"]


def test_a_rebuild_replaces_what_it_wrote_and_keeps_what_a_user_added(release: Path, tmp_path: Path) -> None:
    site = build_site(release, tmp_path / "site")
    (site / "CNAME").write_text("example.org\n")
    (site / "media" / "stale.mp4").write_bytes(b"from an older build")
    build_site(release, site, max_media=1)
    assert (site / "CNAME").read_text() == "example.org\n"
    assert not (site / "media" / "stale.mp4").exists() and len(list((site / "media").glob("*.mp4"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging folder left beside it


def test_server_is_local_and_answers_byte_ranges(site: Path) -> None:
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/index.html") as response:
            assert response.status == 200 and b"<!doctype html>" in response.read()
        mp4 = sorted((site / "media").glob("*.mp4"))[0]
        request = urllib.request.Request(f"{base}/media/{mp4.name}", headers={"Range": "bytes=4-11"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 206
            assert response.headers["Content-Type"] == "video/mp4"
            assert response.read() == mp4.read_bytes()[4:12]
        with pytest.raises(urllib.error.HTTPError) as listing:
            urllib.request.urlopen(f"{base}/media/")
        assert listing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- in a real browser


def _chromium() -> str | None:
    for candidate in (os.environ.get("ACAV1M_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


def _need_browser(reason: str) -> None:
    if os.environ.get("ACAV1M_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need_browser("playwright is not installed (pip install playwright)")
    executable = _chromium()
    if executable is None:
        _need_browser("no Chromium found (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


class _Page:
    """A page that records console errors, page errors and dialogs (an alert would mean injected script ran)."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.page.on(
            "console", lambda m: m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}")
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.wait_results()
        return self.page

    def query_count(self) -> int:
        return self.page.evaluate("ACAV.stats.queries")

    def wait_results(self, after: int = 0) -> None:
        self.page.wait_for_function(
            f"() => window.ACAV && ACAV.stats.queries > {after} && ACAV.stats.done", timeout=15_000
        )

    def cards(self) -> list[dict[str, Any]]:
        return self.page.evaluate(
            """() => Array.from(document.querySelectorAll('article.clip')).map(a => ({
                key: a.dataset.key,
                caption: a.querySelector('.caption').textContent,
                tags: Array.from(a.querySelectorAll('.tag')).map(t => t.textContent),
                scores: Object.fromEntries(Array.from(a.querySelectorAll('.score')).map(
                    s => [s.querySelector('.name').textContent, s.querySelector('.value').textContent])),
            }))"""
        )


@pytest.fixture
def page(browser: Any) -> Iterator[_Page]:
    wrapper = _Page(browser)
    yield wrapper
    problems = wrapper.problems
    wrapper.page.close()
    assert not problems, f"console errors, page errors or dialogs: {problems}"


def _url(site: Path, page: str = "browse.html") -> str:
    return (site / page).resolve().as_uri()


@pytest.mark.slow
def test_search_narrows_the_results(release: Path, site: Path, page: _Page) -> None:
    rows = _index(release)
    page.open(_url(site))
    assert len(page.cards()) == min(len(rows), 24)
    assert page.page.evaluate("ACAV.stats.counted") == len(rows)
    n = page.query_count()
    page.page.fill("#q", "blob flashes")
    page.wait_results(n)
    cards = page.cards()
    expected = [r["key"] for r in rows if "blob flashes" in (r["caption.text"] or "").lower()]
    assert 0 < len(cards) < len(rows)
    assert [c["key"] for c in cards] == expected
    assert "blob" in page.page.evaluate("location.hash")


@pytest.mark.slow
def test_filters_apply(release: Path, site: Path, page: _Page) -> None:
    rows = _index(release)
    page.open(_url(site))
    n = page.query_count()
    page.page.select_option("#split", str(SPLITS.index("validation")))
    page.wait_results(n)
    cards = page.cards()
    assert [c["key"] for c in cards] == [r["key"] for r in rows if r["split"] == "validation"]
    assert all("validation" in c["tags"] for c in cards)

    n = page.query_count()
    page.page.select_option("#split", "")
    page.page.select_option("#status", "flagged")
    page.wait_results(n)
    cards = page.cards()
    assert [c["key"] for c in cards] == [r["key"] for r in rows if not r["alignment.passed"]]
    assert cards and all("flagged" in c["tags"] for c in cards)

    n = page.query_count()
    page.page.select_option("#status", "")
    page.page.fill("#min-temporal", "0.9")
    page.page.dispatch_event("#min-temporal", "change")
    page.wait_results(n)
    cards = page.cards()
    expected = [r["key"] for r in rows if (r["alignment.temporal.score"] or 0) >= 0.9]
    assert 0 < len(cards) < len(rows) and [c["key"] for c in cards] == expected
    assert all(float(c["scores"]["temporal"]) >= 0.9 for c in cards)


@pytest.fixture(scope="module")
def labelled_site(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release index grown to 60 train rows, two thirds of them labelled, without media (paging, labels)."""
    import pyarrow as pa

    base = tmp_path_factory.mktemp("labelled")
    copy = base / "release"
    shutil.copytree(release, copy, ignore=shutil.ignore_patterns("*.tar"))
    table = pq.read_table(copy / index_name("train"))
    rows = table.to_pylist()
    grown = []
    for i in range(60):
        row = dict(rows[i % len(rows)], key=f"{rows[i % len(rows)]['key']}-copy{i}")
        if i % 3:
            label = "rabbit" if i % 3 == 1 else "blob"
            row.update({"labels.category.label": label, "labels.category.id": i % 3, "labels.category.score": 0.9})
            row["labels.category.reason"] = None
        grown.append(row)
    pq.write_table(pa.Table.from_pylist(grown, schema=table.schema), copy / index_name("train"))
    return build_site(copy, base / "site", max_media=0, chunk_rows=7)


@pytest.mark.slow
def test_label_filter_and_paging(release: Path, labelled_site: Path, page: _Page) -> None:
    unlabelled = 20 + sum(r["split"] != "train" for r in _index(release))
    page.open(_url(labelled_site))
    assert len(page.cards()) == 24
    assert page.page.is_visible("#more")
    n = page.query_count()
    page.page.click("#more")
    page.page.wait_for_function(f"() => ACAV.stats.queries === {n} && ACAV.stats.done && ACAV.stats.shown === 48")
    keys = [c["key"] for c in page.cards()]
    assert len(keys) == len(set(keys)) == 48

    labels = page.page.evaluate("Array.from(document.querySelectorAll('#label option')).map(o => o.textContent)")
    assert labels == ["all labels", "blob (20)", "rabbit (20)", f"(no label) ({unlabelled})"]
    n = page.query_count()
    page.page.select_option("#label", label="rabbit (20)")
    page.wait_results(n)
    cards = page.cards()
    assert len(cards) == 20 and all(any(t.startswith("rabbit") for t in c["tags"]) for c in cards)
    assert not page.page.is_visible("#more")
    label_id = page.page.evaluate("document.getElementById('label').value")
    assert f"label={label_id}" in page.page.evaluate("location.hash")

    n = page.query_count()
    page.page.select_option("#label", "-1")
    page.wait_results(n)
    cards = page.cards()
    assert len(cards) == unlabelled and not any(t.startswith(("rabbit", "blob")) for c in cards for t in c["tags"])
    assert page.page.locator(".nomedia").count() == unlabelled, "clips without media show a placeholder"


@pytest.mark.slow
def test_a_clip_plays_with_its_audio(site: Path, page: _Page) -> None:
    page.open(_url(site))
    result = page.page.evaluate(
        """async () => {
            const v = document.querySelector('article.clip video');
            v.muted = true;  // headless autoplay policy; the audio track is still decoded
            await v.play();
            const t0 = v.currentTime;
            // poll rather than sleep a fixed time: a loaded CI machine may decode slowly
            for (let i = 0; i < 100 && !(v.currentTime - t0 > 0.2 && v.webkitAudioDecodedByteCount > 0); i++) {
                await new Promise(r => setTimeout(r, 50));
            }
            return {advanced: v.currentTime - t0, readyState: v.readyState, error: v.error && v.error.message,
                    width: v.videoWidth, audioBytes: v.webkitAudioDecodedByteCount,
                    h264: v.canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"')};
        }"""
    )
    assert result["error"] is None and result["readyState"] >= 2 and result["width"] > 0
    assert result["advanced"] > 0.2, result
    assert result["audioBytes"] > 0, "the AAC track was not decoded"
    assert result["h264"] in ("probably", "maybe")


@pytest.mark.slow
def test_box_and_mask_are_drawn_over_the_video(release: Path, site: Path, page: _Page) -> None:
    rows = {r["key"]: r for r in _index(release)}
    page.open(_url(site))
    geometry = page.page.evaluate(
        """() => Array.from(document.querySelectorAll('article.clip')).filter(a => a.querySelector('.box')).map(a => {
            const f = a.querySelector('video').getBoundingClientRect();
            const b = a.querySelector('.box').getBoundingClientRect();
            const m = a.querySelector('img.mask');
            return {key: a.dataset.key, frame: [f.x, f.y, f.width, f.height], box: [b.x, b.y, b.right, b.bottom],
                    mask: m && {complete: m.complete, w: m.naturalWidth, visible: getComputedStyle(m).display !== 'none'}};
        })"""
    )
    assert geometry, "no box drawn"
    for g in geometry:
        x, y, w, h = g["frame"]
        x0, y0, x1, y1 = rows[g["key"]]["labels.localization.box"]
        assert g["box"] == pytest.approx([x + x0 * w, y + y0 * h, x + x1 * w, y + y1 * h], abs=1.5)
        assert g["mask"]["complete"] and g["mask"]["visible"]
        assert g["mask"]["w"] == rows[g["key"]]["clip.width"]
    page.page.uncheck("#show-box")
    assert page.page.evaluate("getComputedStyle(document.querySelector('.box')).display") == "none"


@pytest.mark.slow
def test_a_hostile_caption_stays_text(release: Path, site: Path, page: _Page) -> None:
    hostile_keys = [r["key"] for r in _index(release) if r["caption.text"] == HOSTILE_CAPTION]
    assert hostile_keys, "the release fixture should carry the hostile caption"
    page.open(_url(site))
    n = page.query_count()
    page.page.fill("#q", "pwned")
    page.wait_results(n)
    cards = page.cards()
    assert [c["key"] for c in cards] == hostile_keys
    assert all(c["caption"] == HOSTILE_CAPTION for c in cards)
    assert page.page.evaluate("document.querySelectorAll('.caption *, .info script, .info img').length") == 0
    assert page.page.evaluate("window.pwned") is None


@pytest.mark.slow
def test_every_page_works_over_http_without_errors(site: Path, page: _Page) -> None:
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page.open(f"{base}/browse.html#split=train")
        assert page.page.evaluate("document.getElementById('split').selectedOptions[0].textContent").startswith("train")
        played = page.page.evaluate(
            """async () => { const v = document.querySelector('video'); v.muted = true; await v.play();
                for (let i = 0; i < 100 && v.currentTime <= 0.1; i++) await new Promise(r => setTimeout(r, 50));
                return v.currentTime; }"""
        )
        assert played > 0.1
        for name in ("index.html", "distributions.html"):
            page.page.goto(f"{base}/{name}")
            assert page.page.locator("h1").first.is_visible()
        assert page.page.locator("svg.hist").count() == 3
        assert page.page.locator("svg.hist .threshold").count() == 3
    finally:
        server.shutdown()
        server.server_close()
