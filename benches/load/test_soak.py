"""Tests of soak.py's reading of the load tools' output: python3 -m unittest discover -s benches/load"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import soak  # noqa: E402

# The lines soak.py reads, in the shape wrk 4.1 and h2load 1.52 print them.
WRK = """Running 5s test @ http://127.0.0.1:1/httptest/test.html
  1 threads and 50 connections
  171590 requests in 5.00s, 55.30MB read
Requests/sec:  34317.52
"""
WRK_ERRORS = """  1 threads and 20 connections
  9000 requests in 5.00s, 2.90MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 4
"""
H2LOAD = """finished in 5.00s, 45220.40 req/s, 14.05MB/s
requests: 226102 total, 226302 started, 226102 done, 226100 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 226100 2xx, 0 3xx, 0 4xx, 0 5xx
"""


class Served(unittest.TestCase):
    def test_requests_and_errors_are_summed_over_the_tools(self):
        done, errors = soak.served([WRK, WRK_ERRORS, H2LOAD])
        self.assertEqual(done, 171590 + 9000 + 226100)
        self.assertEqual(errors, (3 + 1 + 2) + 4 + (1 + 1))

    def test_a_tool_without_its_summary_is_an_error(self):
        self.assertEqual(soak.served(["unable to connect to 127.0.0.1:1 Connection refused\n", WRK]), (171590, 1))


if __name__ == "__main__":
    unittest.main()
