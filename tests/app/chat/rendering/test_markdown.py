"""render_markdown: structure, highlighting, copy links and escaping."""

from __future__ import annotations

import re

from gpt_oss_desktop.app.chat.rendering import COPY_SCHEME, DARK_STYLE, render_markdown, style_sheet
from tests.app.chat.rendering.corpus import FIXED


def test_headings_emphasis_lists_links_tables() -> None:
    html = render_markdown(FIXED).html
    assert "<h1>Plan</h1>" in html
    assert "<h2>Setext heading</h2>" in html
    assert "<strong>what</strong>" in html
    assert "<code>inline code</code>" in html
    assert '<a href="https://example.org">link</a>' in html
    assert "<ol>" in html and "<ul>" in html and html.count("<li>") >= 6
    assert "<blockquote>" in html
    assert "<th>name</th>" in html and "<td>1</td>" in html
    assert "<s>struck</s>" in html


def test_fenced_code_is_highlighted_with_inline_styles_and_copy_links() -> None:
    rendered = render_markdown(FIXED)
    # Pygments inline styles (no classes: Qt ignores class rules).
    assert re.search(r'<span style="[^"]*color: #[0-9A-Fa-f]{6}[^"]*">def</span>', rendered.html)
    assert 'class="' not in rendered.html.replace('class="code"', "")
    assert rendered.code_blocks == [
        'def add(a: int, b: int) -> int:\n    """Add."""\n    return a + b',
        "plain block",
    ]
    links = re.findall(rf'<a href="{COPY_SCHEME}:(\d+)"', rendered.html)
    assert links == ["0", "1"]


def test_raw_html_is_escaped() -> None:
    html = render_markdown('<script>alert(1)</script>\n\nHi <img src="x" onerror="y"> <b>bold</b>').html
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_unsafe_links_and_images_do_not_become_live_markup() -> None:
    html = render_markdown("[x](javascript:alert(1)) ![pic](https://example.org/p.png)").html
    assert "javascript:" not in html.replace("[x](javascript:alert(1))", "")
    assert "<img" not in html  # images become links: QTextBrowser would load src from disk
    assert '<a href="https://example.org/p.png">[pic]</a>' in html


def test_unclosed_fence_renders_as_code_so_far() -> None:
    rendered = render_markdown("Intro\n\n```python\nx = 1\ny = ")
    assert rendered.code_blocks == ["x = 1\ny = "]
    assert "<p>Intro</p>" in rendered.html
    assert 'href="copy:0"' in rendered.html


def test_unknown_language_and_indented_code_fall_back_to_plain_text() -> None:
    rendered = render_markdown("```no-such-lang\na < b\n```\n\n    indented\n")
    assert rendered.code_blocks == ["a < b", "indented"]
    assert "a &lt; b" in rendered.html
    assert "no-such-lang" in rendered.html


def test_dark_style_and_code_base() -> None:
    rendered = render_markdown("```py\nx\n```", style=DARK_STYLE, code_base=5)
    assert 'href="copy:5"' in rendered.html
    assert "#272822" in rendered.html  # monokai background on the code box


def test_style_sheet_sets_no_colours() -> None:
    sheet = style_sheet("DejaVu Sans Mono")
    assert "DejaVu Sans Mono" in sheet
    assert "color" not in sheet and "background" not in sheet
