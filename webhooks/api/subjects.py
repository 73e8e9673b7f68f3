"""A subject's file: for the subject itself, its enterprise agents and platform admins."""
from __future__ import annotations

from flask_smorest import Blueprint

from .. import auth
from .common import BEARER, SubjectDetail, errors_doc, subject_detail

PREFIX = "/subjects"
blp = Blueprint("subjects", __name__, description="Credit subjects")


@blp.route("/<int:subject_id>", methods=["GET"])
@blp.response(200, SubjectDetail)
@blp.doc(security=BEARER)
@errors_doc(blp, 401, 403, 404)
def show(subject_id):
    """Colour now and every record, masked. Anyone else gets 404, whether or not the subject exists."""
    auth.require_subject(subject_id)
    return subject_detail(subject_id)
