// The token form (README "Security"): shown when the API answers 401, in
// place of the page, until a token is entered. api.js keeps the token and
// retries the refused calls with it.

const panel = () => document.querySelector('[data-testid=token-panel]');

// Shows the form with why (the reason the last token was refused, or '')
// and resolves with the token entered.
export function askToken(why) {
    const p = panel();
    const form = p.querySelector('[data-testid=token-form]');
    const input = form.querySelector('[data-testid=token-input]');
    const error = form.querySelector('[data-testid=token-error]');
    const view = document.getElementById('view');
    error.textContent = why || '';
    if (why) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    input.value = '';
    p.hidden = false;
    view.hidden = true;
    input.focus();
    return new Promise((resolve) => {
        const onSubmit = (ev) => {
            ev.preventDefault();
            const t = input.value.trim();
            if (!t) {
                error.textContent = 'Enter the token you were given.';
                input.setAttribute('aria-invalid', 'true');
                input.focus();
                return;
            }
            form.removeEventListener('submit', onSubmit);
            input.value = '';
            error.textContent = '';
            input.removeAttribute('aria-invalid');
            p.hidden = true;
            view.hidden = false;
            resolve(t);
        };
        form.addEventListener('submit', onSubmit);
    });
}
