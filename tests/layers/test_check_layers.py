#!/usr/bin/env python3
"""The layer check itself: it must flag an include that points up, and pass a clean tree."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_layers  # noqa: E402


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


class CheckLayersTest(unittest.TestCase):
    def test_downward_and_same_layer_includes_pass(self):
        with tempfile.TemporaryDirectory() as src:
            write(src, "proxy/a.h", '#include "core/result.h"\n#include "upstream/pool.h"\n')
            write(src, "upstream/pool.h", '#include "lb/x.h"\n#include <vector>\n')
            write(src, "main.cc", '#include "server/server.h"\n')
            problems, files = check_layers.check(src)
            self.assertEqual(problems, [])
            self.assertEqual(files, 3)

    def test_upward_include_is_flagged_with_file_and_line(self):
        with tempfile.TemporaryDirectory() as src:
            write(src, "config/model.h", '#pragma once\n#include "proxy/router.h"\n')
            problems, _ = check_layers.check(src)
            self.assertEqual(len(problems), 1)
            self.assertIn("src/config/model.h:2", problems[0])
            self.assertIn("proxy", problems[0])

    def test_folder_without_a_layer_is_flagged(self):
        with tempfile.TemporaryDirectory() as src:
            write(src, "quic/proxy.cc", '#include "core/buffer.h"\n')
            write(src, "core/x.cc", '#include "quic/proxy.h"\n')
            problems, _ = check_layers.check(src)
            self.assertEqual(len(problems), 2)


if __name__ == "__main__":
    unittest.main()
