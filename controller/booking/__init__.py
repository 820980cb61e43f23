"""The CAMARA Network Slice Booking API: city agencies book slices for a time and a place.

A booking is a :class:`slices.intent.NetworkSlice` with a schedule and a tenant, admitted over
the capacity calendar (:mod:`controller.core.calendar`) and served over REST (FastAPI on uvicorn)
to clients the operator registers. See docs/booking.md.
"""
