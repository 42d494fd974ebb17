"""Thin Lambda entry points: parse the step's input, call one domain function, return its report."""
