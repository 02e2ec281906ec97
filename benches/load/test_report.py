"""Tests of report.py's paired ratios and CPU table: python3 -m unittest discover -s benches/load"""

import contextlib
import io
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

SERVERS = ["oserver", "nginx", "h2o"]


def run(round_, case, server, rps, cpu="-", wrk_cpu="-"):
    return [str(round_), case, server, str(rps), "1.00", "0", "0", cpu, wrk_cpu]


class RoundRatios(unittest.TestCase):
    def test_each_round_is_against_that_round_s_best_other(self):
        runs = [
            run(1, "small_ka", "oserver", 150), run(1, "small_ka", "nginx", 50), run(1, "small_ka", "h2o", 100),
            run(2, "small_ka", "oserver", 90), run(2, "small_ka", "nginx", 120), run(2, "small_ka", "h2o", 60),
            run(3, "small_ka", "oserver", 200), run(3, "small_ka", "nginx", 10), run(3, "small_ka", "h2o", 125),
        ]
        lines = report.round_ratios(runs, SERVERS, ["oserver"], {"small_ka"})
        row = [l for l in lines if l.startswith("| (a)")]
        self.assertEqual(len(row), 1)
        # 150/100, 90/120, 200/125; median 1.50
        self.assertIn("| 1.50 0.75 1.60 | 1.50x | 1.30x |", row[0])

    def test_a_round_without_oserver_or_others_is_left_out(self):
        runs = [
            run(1, "small_c5000", "oserver", 120), run(1, "small_c5000", "h2o", 100),
            run(2, "small_c5000", "oserver", "-"), run(2, "small_c5000", "h2o", 100),
            run(3, "small_c5000", "oserver", 130),
        ]
        lines = report.round_ratios(runs, SERVERS, ["oserver"], {"small_c5000"})
        self.assertIn("| 1.20 | 1.20x | 1.15x |", "\n".join(lines))

    def test_a_floor_is_never_the_best_other(self):
        runs = [run(1, "small_ka", "oserver", 150), run(1, "small_ka", "h2o", 100),
                run(1, "small_ka", "floor-epoll", 160)]
        lines = report.round_ratios(runs, SERVERS + ["floor-epoll"], ["oserver"], {"small_ka"})
        self.assertIn("| 1.50 | 1.50x | 1.30x |", "\n".join(lines))

    def test_cases_without_a_target_get_no_row(self):
        runs = [run(1, "small_c1000", "oserver", 120), run(1, "small_c1000", "h2o", 100)]
        self.assertEqual(report.round_ratios(runs, SERVERS, ["oserver"], {"small_c1000"}), [])


class CpuTable(unittest.TestCase):
    def test_medians_per_server_and_n_a_without_figures(self):
        runs = [
            run(1, "small_ka", "oserver", 1, "5.00"), run(2, "small_ka", "oserver", 1, "7.00"),
            run(3, "small_ka", "oserver", 1, "6.00"), run(1, "small_ka", "h2o", 1, "9.50"),
            run(1, "small_ka", "nginx", 1, "-"),
        ]
        lines = report.cpu_table(runs, SERVERS, {"small_ka"})
        self.assertIn("| (a) ~100 B file, keep-alive | 6.00 | n/a | 9.50 |", lines)

    def test_results_without_the_cpu_column_give_no_table(self):
        runs = [r[:7] for r in [run(1, "small_ka", "oserver", 1, "5.00")]]
        self.assertEqual(report.cpu_table(runs, SERVERS, {"small_ka"}), [])

    def test_wrk_s_cpu_comes_from_its_own_column(self):
        runs = [
            run(1, "small_c5000", "oserver", 1, "8.00", "15.00"), run(2, "small_c5000", "oserver", 1, "9.00", "17.00"),
            run(1, "small_c5000", "h2o", 1, "12.00", "16.50"),
        ]
        lines = report.cpu_table(runs, SERVERS, {"small_c5000"}, report.WRK_CPU)
        self.assertTrue(lines[0].startswith("| wrk's CPU per request"), lines[0])
        self.assertIn("| (n) ~100 B file, keep-alive, 5,000 connections | 16.00 | n/a | 16.50 |", lines)
        server = report.cpu_table(runs, SERVERS, {"small_c5000"})
        self.assertIn("| (n) ~100 B file, keep-alive, 5,000 connections | 8.50 | n/a | 12.00 |", server)

    def test_results_from_before_the_wrk_column_give_no_wrk_table(self):
        runs = [r[:8] for r in [run(1, "small_ka", "oserver", 1, "5.00", "7.00")]]
        self.assertEqual(report.cpu_table(runs, SERVERS, {"small_ka"}, report.WRK_CPU), [])


def whole_report(runs, servers):
    """The report report.main writes for these results, as text."""
    with tempfile.TemporaryDirectory() as d:
        res, mach, out = (os.path.join(d, n) for n in ("r.tsv", "m.txt", "o.md"))
        with open(res, "w") as f:
            f.writelines("\t".join(r) + "\n" for r in runs)
        with open(mach, "w") as f:
            f.write("date: today\n")
        argv = ["report.py", "--results", res, "--machine", mach, "--servers", ",".join(servers),
                "--command", "x", "--out", out]
        with mock.patch.object(sys, "argv", argv), contextlib.redirect_stdout(io.StringIO()):
            report.main()
        with open(out) as f:
            return f.read()


class WholeReport(unittest.TestCase):
    def test_the_report_has_the_paired_ratios_and_both_cpu_tables(self):
        text = whole_report([run(1, "small_close", "oserver", 40, "9.00", "30.00"),
                             run(1, "small_close", "nginx", 20, "27.00", "31.00")], ["oserver", "nginx"])
        self.assertIn("| (c) ~100 B file, `Connection: close` | 2.00 | 2.00x | 1.30x |", text)
        self.assertIn("| (c) ~100 B file, `Connection: close` | 9.00 | 27.00 |", text)
        self.assertIn("| (c) ~100 B file, `Connection: close` | 30.00 | 31.00 |", text)

    def test_floors_get_a_column_each_and_stay_out_of_the_best_other(self):
        text = whole_report([run(1, "small_ka", "oserver", 150, "6.00", "7.00"),
                             run(1, "small_ka", "h2o", 120, "7.50", "7.50"),
                             run(1, "small_ka", "floor-epoll", 160, "5.40", "7.00"),
                             run(1, "small_ka", "floor-uring", 200, "4.40", "6.90")],
                            ["oserver", "h2o", "floor-epoll", "floor-uring"])
        self.assertIn("| oserver vs best other | oserver / floor-epoll | oserver / floor-uring |", text)
        # 150 / 120 (h2o, not the floors), 150 / 160, 150 / 200
        self.assertIn("| 150 | 120 | 160 | 200 | 1.25x (target >= 1.30x: FAIL) | 0.94x | 0.75x |", text)
        self.assertIn("| (a) ~100 B file, keep-alive | 6.00 | 7.50 | 5.40 | 4.40 |", text)
        # and each floor's own per-round ratio to the same best other
        self.assertIn("| (a) ~100 B file, keep-alive (floor-uring) | 1.67 | 1.67x | 1.30x |", text)


if __name__ == "__main__":
    unittest.main()
