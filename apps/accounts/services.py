"""Team members, roles and invitations of the current company (run inside its schema)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.accounts.models import Invitation, Membership, Role, User
from apps.audit.services import Actor, audit_record


def user_create(
    *, email: str, name: str, password: str | None, role: str, email_verified: bool = False
) -> User:
    """Create a team member with a role, and their allauth email address record.

    `password=None` leaves the account without a usable password (set through "forgot
    password" or an invitation). Raises ValidationError for a weak password or a taken email.
    """
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": _("A team member with this email already exists.")})
    user = User(email=email, name=name.strip())
    if password is None:
        user.set_unusable_password()
    else:
        validate_password(password, user)
        user.set_password(password)
    user.save()
    Membership.objects.create(user=user, role=role)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=email_verified)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # shown once, in the link; only its hash is stored


def _require_manager(actor_membership: Membership, role: str) -> None:
    if not actor_membership.can_manage:
        raise PermissionDenied(_("Only owners and admins can manage the team."))
    if role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise PermissionDenied(_("Only owners can make someone an owner."))


@transaction.atomic
def invitation_create(
    *, email: str, role: str, invited_by: User, actor: Actor, link_for: Callable[[str], str]
) -> IssuedInvitation:
    """Invite `email` with `role`, replacing any open invitation to that email, and email the
    link (`link_for(token)`) after commit."""
    _require_manager(invited_by.membership, role)
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email, is_active=True).exists():
        raise ValidationError({"email": _("This person is already a team member.")})
    now = timezone.now()
    Invitation.objects.filter(email=email, accepted_at=None, revoked_at=None).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        email=email,
        role=role,
        token_hash=_token_hash(token),
        invited_by=invited_by,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit_record(
        actor=actor, action="invitation.create", instance=invitation, changes={"role": [None, role]}
    )
    link = link_for(token)
    language = translation.get_language()
    inviter = invited_by.get_full_name()

    def send() -> None:
        with translation.override(language):
            body = render_to_string(
                "accounts/email/invitation.txt",
                {"link": link, "inviter": inviter, "days": settings.INVITATION_TTL_DAYS},
            )
            send_mail(_("You are invited to join your team on CHAPI"), body, None, [email])

    transaction.on_commit(send)
    return IssuedInvitation(invitation=invitation, token=token)


def invitation_get_open(*, token: str) -> Invitation | None:
    invitation = Invitation.objects.filter(token_hash=_token_hash(token)).first()
    return invitation if invitation is not None and invitation.is_open else None


@transaction.atomic
def invitation_accept(*, token: str, name: str, password: str, actor: Actor) -> User:
    """Accept an open invitation: create (or reactivate) the user with the invited role."""
    invitation = (
        Invitation.objects.select_for_update().filter(token_hash=_token_hash(token)).first()
    )
    if invitation is None or not invitation.is_open:
        raise ValidationError(_("This invitation is no longer valid. Ask for a new one."))
    existing = User.objects.filter(email__iexact=invitation.email).first()
    if existing is not None:
        validate_password(password, existing)
        existing.set_password(password)
        existing.name = name.strip() or existing.name
        existing.is_active = True
        existing.save()
        Membership.objects.update_or_create(user=existing, defaults={"role": invitation.role})
        EmailAddress.objects.filter(user=existing, email__iexact=invitation.email).update(
            verified=True
        )
        user = existing
    else:
        user = user_create(
            email=invitation.email,
            name=name,
            password=password,
            role=invitation.role,
            email_verified=True,  # they proved it by opening the emailed link
        )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_record(
        actor=Actor(kind=actor.kind, user_id=user.pk, email=user.email, ip=actor.ip),
        action="invitation.accept",
        instance=invitation,
    )
    return user


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: User, actor: Actor) -> None:
    _require_manager(by.membership, invitation.role)
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="invitation.revoke", instance=invitation)


def invitations_expire() -> int:
    """Delete invitations that expired more than a week ago. Returns how many."""
    cutoff = timezone.now() - timedelta(days=7)
    deleted, _ = Invitation.objects.filter(accepted_at=None, expires_at__lt=cutoff).delete()
    return deleted


def _owners_left_after(membership: Membership) -> int:
    return (
        Membership.objects.select_for_update()
        .filter(role=Role.OWNER, user__is_active=True)
        .exclude(pk=membership.pk)
        .count()
    )


@transaction.atomic
def membership_role_change(
    *, membership: Membership, role: str, by: Membership, actor: Actor
) -> Membership:
    """Change a member's role. Only owners grant or take away the owner role; the last owner
    keeps it."""
    if role not in Role.values:
        raise ValidationError(_("Unknown role."))
    _require_manager(by, role)
    if membership.role == Role.OWNER and by.role != Role.OWNER:
        raise PermissionDenied(_("Only owners can change another owner's role."))
    if membership.role == Role.OWNER and role != Role.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError(_("The company needs at least one owner."))
    old = membership.role
    if old != role:
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor, action="membership.role_change", instance=membership,
            changes={"role": [old, role]},
        )  # fmt: skip
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by: Membership, actor: Actor) -> None:
    """Remove a member from the team: their account is deactivated (which also ends their
    sessions: inactive users are never authenticated) and their role dropped, so their past
    actions stay attributed. The last owner cannot be removed."""
    _require_manager(by, Role.AGENT)
    if membership.role == Role.OWNER and by.role != Role.OWNER:
        raise PermissionDenied(_("Only owners can remove an owner."))
    if membership.role == Role.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError(_("The company needs at least one owner."))
    user = membership.user
    audit_record(
        actor=actor, action="membership.remove", instance=membership,
        changes={"role": [membership.role, None]},
    )  # fmt: skip
    membership.delete()
    user.is_active = False
    user.save(update_fields=["is_active"])
