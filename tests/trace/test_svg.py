"""The genealogy picture: columns by generation, cycles set aside, text escaped, valid SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mes.trace import svg


def test_columns_follow_the_longest_chain_and_a_cycle_is_set_aside():
    links = [svg.Link("R", "R.01", "split"), svg.Link("R", "R.02", "split"),
             svg.Link("R.02", "R", "merge"), svg.Link("R.01", "R.01.01", "split"),
             svg.Link("R.01.01", "M", "merge"), svg.Link("M", "M.01", "split")]
    placed = svg.layout(["R", "M", "R.01", "R.02", "R.01.01", "M.01"], links)
    assert placed.column == {"R": 0, "R.01": 1, "R.02": 1, "R.01.01": 2, "M": 3, "M.01": 4}
    assert placed.back == {("R.02", "R")}


def test_picture_is_valid_svg_with_links_holds_and_shipments():
    nodes = [svg.Node("A", "A<&>", "queued", "/trace/lots/A?x=1&y=2", on_hold=True),
             svg.Node("B", "B", "shipped", "/trace/lots/B")]
    picture = svg.genealogy(nodes, [svg.Link("A", "B", "split")],
                            [svg.Outbound("1", "Shipment 1", "OEM", ("B",), "/s/1")],
                            title="Genealogy of A")
    root = ET.fromstring(picture)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    hrefs = [a.get("href") for a in root.iter(f"{ns}a")]
    assert hrefs == ["/trace/lots/A?x=1&y=2", "/trace/lots/B", "/s/1"]
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "A<&>" in texts and "OEM" in texts and "H" in texts
    assert "style=" not in picture


def test_too_many_lots_are_not_drawn():
    nodes = [svg.Node(str(i), str(i), "queued", "/") for i in range(svg.MAX_NODES + 1)]
    picture = svg.genealogy(nodes, [], too_large="Too many")
    assert "Too many" in picture and "<rect" not in picture
