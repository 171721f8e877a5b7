from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.access.models import ApiToken
from apps.access.services import api_token_validate
from apps.kernel.roles import ScopeChoices


class ApiTokenAdminForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ScopeChoices.choices, widget=forms.CheckboxSelectMultiple, initial=[ScopeChoices.READ]
    )

    class Meta:
        model = ApiToken
        fields = ("tenant", "user", "name", "scopes", "expires_at")

    def clean_scopes(self) -> list[str]:
        return sorted(self.cleaned_data["scopes"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            api_token_validate(
                tenant=data["tenant"], user=data["user"], scopes=data["scopes"], expires_at=data.get("expires_at")
            )
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        return data

    def _post_clean(self) -> None:
        # The service above holds the rules; the model's full_clean would trip over the
        # secret fields that only the service fills in.
        pass
