from __future__ import annotations

from gpt_oss_desktop.engine.tools.browser.html_text import html_to_page, text_to_page
from gpt_oss_desktop.engine.tools.browser.page import LinkTarget, PageKind, strip_link_markers, wrap_lines

BASE = "https://example.com/guide/start"


def lines(html: str, url: str = BASE) -> list[str]:
    return list(html_to_page(html, url).lines)


def test_links_become_markers_with_ids_resolved_against_the_page() -> None:
    page = html_to_page(
        '<p>See <a href="../docs#part">the docs</a>, <a href="https://other.org/x">elsewhere</a> and '
        '<a href="/docs">the docs again</a>.</p>',
        BASE,
    )
    assert page.lines == ("See 【0†the docs】, 【1†elsewhere†other.org】 and 【0†the docs again】.",)
    # one id per address (the fragment is not part of it); links leaving the site carry its domain
    assert page.links == {"0": LinkTarget("https://example.com/docs"), "1": LinkTarget("https://other.org/x")}
    assert page.kind is PageKind.DOCUMENT


def test_links_that_open_no_page_stay_text() -> None:
    page = html_to_page(
        '<p><a href="javascript:go()">run</a> <a href="mailto:a@b.c">mail</a> <a href="#top">top</a> '
        '<a href="ftp://x.org/f">ftp</a> <a href="/i"><img src="i.png"></a></p>',
        BASE,
    )
    assert page.lines == ("run mail top ftp",)
    assert page.links == {}


def test_hidden_and_invisible_parts_are_left_out_even_with_unclosed_tags() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style><script>document.write('<p>no</p>')</script>"
        "<body><nav hidden><ul><li>menu<li>more</ul></nav><div aria-hidden=true><div>dup</div></div>"
        "<p>shown<p>also shown<template><p>never</p></template><noscript>enable js</noscript>"
    )
    assert lines(html) == ["shown", "", "also shown"]


def test_structure_headings_lists_tables_and_preformatted_code() -> None:
    html = (
        "<h2>Install</h2><p>Run   this:</p><pre>def f():\n    return 1</pre>"
        "<ul><li>one</li><li>two<li>three</ul><table><tr><th>a<th>b<tr><td>1</td><td>2</td></table>"
        '<img alt="A chart" src=c.png><br>end'
    )
    assert lines(html) == [
        "## Install",
        "",
        "Run this:",
        "",
        "def f():",
        "    return 1",
        "",
        "* one",
        "* two",
        "* three",
        "",
        "a b",
        "1 2",
        "",
        "[Image 0: A chart]",
        "end",
    ]


def test_the_title_falls_back_to_the_first_heading_then_the_site() -> None:
    assert html_to_page("<title> A  title </title><h1>H</h1>", BASE).title == "A title"
    assert html_to_page("<h1>The <em>heading</em></h1><p>x</p>", BASE).title == "The heading"
    assert html_to_page("<p>x</p>", BASE).title == "example.com"
    assert html_to_page("<p>x</p>", BASE, title="Given").title == "Given"


def test_characters_of_the_markup_are_replaced_in_page_text() -> None:
    page = html_to_page('<p>【not a link】 <a href="/a">a†b</a></p>', BASE)
    assert page.lines == ("〖not a link〗 【0†a‡b】",)


def test_text_pages_keep_their_lines_and_are_named_by_file() -> None:
    page = text_to_page('{\r\n  "a": 1\r\n}', "https://example.com/data/x.json")
    assert page.lines == ("{", '  "a": 1', "}")
    assert page.title == "x.json"
    assert page.links == {}


def test_long_lines_wrap_at_80_and_keep_indentation_and_no_long_run_survives() -> None:
    wrapped = wrap_lines("    " + "word " * 40 + "\n\n" + "x" * 200)
    assert all(len(line) <= 80 for line in wrapped)
    assert wrapped[0].startswith("    word") and wrapped[1].startswith("    word")
    assert "" in wrapped
    assert max(len(line) for line in wrapped if line.startswith("x")) == 80


def test_find_text_strips_markers_even_when_wrapped_over_two_lines() -> None:
    page = html_to_page(
        "<p>" + "filler " * 9 + '<a href="https://other.org/">a rather long link title</a> end</p>', BASE
    )
    assert len(page.lines) == 2  # the marker is broken over the two lines
    plain = strip_link_markers("\n".join(page.lines)).split("\n")
    assert "".join(plain).replace(" ", "") == ("filler" * 9 + "a rather long link title end").replace(" ", "")
