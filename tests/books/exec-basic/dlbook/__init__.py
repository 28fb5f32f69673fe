"""Fixture library (stands in for the generated dlbook)."""
from .base import *
from .models import *
from .other import answer
