"""Postal delivery routes: assignment of orders to routes and stop sequencing.

A library: plain data in, plain data out; no Flask, no database.
"""
